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
    const char *name;
    bool iothread;              /* the device runs in iothread0 */
    bool event_idx;
    bool legacy;                /* the device has disable-modern=on */
    bool in_order;              /* the device has in_order=on */
} ModelCase;

static const ModelCase model_cases[] = {
    { .name = "model-rw" },
    { .name = "model-rw-event-idx", .event_idx = true },
    { .name = "model-rw-iothread", .iothread = true },
    { .name = "model-rw-iothread-event-idx", .iothread = true,
      .event_idx = true },
    { .name = "model-rw-legacy", .legacy = true },
    { .name = "model-rw-legacy-iothread-event-idx", .legacy = true,
      .iothread = true, .event_idx = true },
    { .name = "model-rw-in-order", .in_order = true },
    { .name = "model-rw-in-order-iothread-event-idx", .in_order = true,
      .iothread = true, .event_idx = true },
};

static ModelDisk *disk;         /* of drive0 */

static void *model_setup(GString *cmd_line, void *arg)
{
    const ModelCase *mc = arg;

    model_disk_create(&disk, DISK_SIZE);
    model_drive_append(cmd_line, "drive0", disk, "");
    if (mc->iothread) {
        g_string_append(cmd_line, " -object iothread,id=iothread0 ");
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

/*
 * A case without device options runs on every transport's virtio-blk;
 * one with them on virtio-blk-pci, the node whose -device takes them.
 */
static void register_virtio_blk_model_test(void)
{
    int i;

    for (i = 0; i < ARRAY_SIZE(model_cases); i++) {
        const ModelCase *mc = &model_cases[i];
        g_autoptr(GString) dev_opts = g_string_new(NULL);
        QOSGraphTestOptions opts = {
            .before = model_setup,
            .arg = (void *)mc,
        };

        if (mc->legacy) {
            g_string_append(dev_opts, ",disable-modern=on");
        }
        if (mc->in_order) {
            g_string_append(dev_opts, ",in_order=on");
        }
        if (mc->iothread) {
            g_string_append(dev_opts, ",iothread=iothread0");
        }
        if (!dev_opts->len) {
            qos_add_test(mc->name, "virtio-blk", test_model_rw, &opts);
            continue;
        }
        opts.edge.extra_device_opts = dev_opts->str + 1;
        qos_add_test(mc->name, "virtio-blk-pci", test_model_rw_pci, &opts);
    }
}

libqos_init(register_virtio_blk_model_test);
