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
 * on a transitional device driven through its legacy interface (virtio
 * 0.9.5: no VIRTIO_F_VERSION_1, the rings at 4 KiB alignment); and with
 * VIRTIO_F_IN_ORDER, where every batch must come back in the order it
 * was made available, merged and sorted requests included.
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
    bool in_order;              /* the device has in_order=on */
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
    g_assert_cmpint(model_used_in_order(), ==, mc->in_order);
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
    static const ModelCase plain = { NULL, false, false, false };
    static const ModelCase plain_event_idx = { NULL, true, false, false };
    static const ModelCase iothread = { "iothread0", false, false, false };
    static const ModelCase iothread_event_idx = { "iothread0", true, false,
                                                  false };
    static const ModelCase legacy = { NULL, false, true, false };
    static const ModelCase legacy_iothread_event_idx = { "iothread0", true,
                                                         true, false };
    static const ModelCase in_order = { NULL, false, false, true };
    static const ModelCase in_order_iothread_event_idx = { "iothread0", true,
                                                           false, true };
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

    opts.edge.extra_device_opts = "in_order=on";
    opts.arg = (void *)&in_order;
    qos_add_test("model-rw-in-order", "virtio-blk-pci", test_model_rw_pci,
                 &opts);
    opts.edge.extra_device_opts = "in_order=on,iothread=iothread0";
    opts.arg = (void *)&in_order_iothread_event_idx;
    qos_add_test("model-rw-in-order-iothread-event-idx", "virtio-blk-pci",
                 test_model_rw_pci, &opts);
}

libqos_init(register_virtio_blk_model_test);
