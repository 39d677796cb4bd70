/*
 * QTest testcase for the virtio-blk data path against a reference model
 *
 * Thousands of random reads, writes and flushes of 512 B to 1 MiB go
 * through virtio-blk in batches of up to 16 requests per kick, with
 * random descriptor layouts (virtio-blk-model.c). Sequential runs make
 * the device merge requests. Every read is checked byte by byte against
 * an in-memory model of the disk, and at the end the disk is read back
 * whole, through the device and from the image file. It runs without and
 * with an iothread, and without and with VIRTIO_RING_F_EVENT_IDX, which
 * changes how the device and the driver decide to notify each other;
 * and on a transitional device driven through its legacy interface
 * (virtio 0.9.5: no VIRTIO_F_VERSION_1, the rings at 4 KiB alignment).
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest-single.h"
#include "qemu/module.h"
#include "standard-headers/linux/virtio_config.h"
#include "virtio-blk-model.h"

#define NUM_REQUESTS        2000

typedef struct ModelCase {
    const char *iothread;       /* of the device, or NULL */
    bool event_idx;
    bool legacy;                /* the device has disable-modern=on */
} ModelCase;

static ModelDisk *disk;         /* of drive0 */

static void *model_setup(GString *cmd_line, void *arg)
{
    const ModelCase *mc = arg;

    model_disk_create(&disk, DISK_SIZE);
    model_drive_append(cmd_line, "drive0", disk, "");
    if (mc->iothread) {
        g_string_append_printf(cmd_line, " -object iothread,id=%s ",
                               mc->iothread);
    }
    return arg;
}

static void model_rw(QVirtioDevice *dev, QGuestAllocator *alloc,
                     const ModelCase *mc)
{
    QVirtQueue *vq;

    if (mc->legacy && qtest_big_endian(global_qtest)) {
        g_test_skip("virtio-blk-ring.c writes little-endian rings");
        return;
    }
    /* libqos drives the device through the interface it offers */
    g_assert_cmpint(!(qvirtio_get_features(dev) &
                      (1ull << VIRTIO_F_VERSION_1)), ==, mc->legacy);
    model_start_device(dev, alloc, disk, &vq, 1, mc->event_idx);
    model_exercise(dev, alloc, disk, &vq, 1, NUM_REQUESTS);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

static void test_model_rw(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioBlk *blk_if = obj;

    model_rw(blk_if->vdev, alloc, data);
}

/* The same on virtio-blk-pci, the node that can take an iothread. */
static void test_model_rw_pci(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;

    model_rw(&pdev->vdev, alloc, data);
}

static void register_virtio_blk_model_test(void)
{
    static const ModelCase plain = { NULL, false, false };
    static const ModelCase plain_event_idx = { NULL, true, false };
    static const ModelCase iothread = { "iothread0", false, false };
    static const ModelCase iothread_event_idx = { "iothread0", true, false };
    static const ModelCase legacy = { NULL, false, true };
    static const ModelCase legacy_iothread_event_idx = { "iothread0", true,
                                                         true };
    QOSGraphTestOptions opts = {
        .before = model_setup,
    };

    opts.arg = (void *)&plain;
    qos_add_test("model-rw", "virtio-blk", test_model_rw, &opts);
    opts.arg = (void *)&plain_event_idx;
    qos_add_test("model-rw-event-idx", "virtio-blk", test_model_rw, &opts);

    opts.edge.extra_device_opts = "iothread=iothread0";
    opts.arg = (void *)&iothread;
    qos_add_test("model-rw-iothread", "virtio-blk-pci", test_model_rw_pci,
                 &opts);
    opts.arg = (void *)&iothread_event_idx;
    qos_add_test("model-rw-iothread-event-idx", "virtio-blk-pci",
                 test_model_rw_pci, &opts);

    opts.edge.extra_device_opts = "disable-modern=on";
    opts.arg = (void *)&legacy;
    qos_add_test("model-rw-legacy", "virtio-blk-pci", test_model_rw_pci,
                 &opts);
    opts.edge.extra_device_opts = "disable-modern=on,iothread=iothread0";
    opts.arg = (void *)&legacy_iothread_event_idx;
    qos_add_test("model-rw-legacy-iothread-event-idx", "virtio-blk-pci",
                 test_model_rw_pci, &opts);
}

libqos_init(register_virtio_blk_model_test);
