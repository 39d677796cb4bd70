/*
 * QTest testcase for virtio-blk lifecycle events under I/O
 *
 * A system reset, an unplug, a resize, a refused or a real change of
 * iothread hit the device with a batch of requests in flight, and a
 * multiqueue device serves batches on all queues at once. Some batches
 * fill the whole ring: every request the device can have in use on the
 * queue. The reference model of the disk (virtio-blk-model.c) checks
 * every completion and the image afterwards.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest-single.h"
#include "qemu/module.h"
#include "qobject/qjson.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_pci.h"
#include "libqos/virtio-pci.h"
#include "virtio-blk-model.h"

/*
 * A batch is in flight when a system reset, an unplug, a resize or a
 * refused AioContext change hits the device. To have it in flight for
 * sure, block_set_io_throttle limits the drive to one request per
 * second: under qtest, throttling measures time in QEMU_CLOCK_VIRTUAL,
 * which moves only when a test steps it, so all reads and writes but one
 * or two (see lifecycle_check_held) stay queued in the throttle group
 * until something drains the drive (draining ignores the limits; so
 * does lifting them). Whatever the event, no head may complete twice and
 * what completes must be right; the drain executes the held writes, so
 * the image must then hold exactly the model; and the device, where it
 * is still there, must serve random I/O again.
 */
#define LC_DISK_SIZE        (4 * 1024 * 1024)
#define LC_GROWTH           (2 * 1024 * 1024)
#define LC_NUM_REQUESTS     40
#define LC_NUM_QUEUES       4
/*
 * How long a drained batch may take to appear in the used ring: well
 * below the seconds the limit would take to let MAX_BATCH requests through
 */
#define LC_DRAINED_WAIT_US  (5 * 1000 * 1000)
/*
 * The size of the ring full-ring tests fill, set by the driver: the device
 * may offer more (QEMU 10.0 offers 1024 entries whatever queue-size says,
 * for migration compatibility; later ones queue-size, 256 by default),
 * too many to fill in reasonable time over qtest.
 */
#define LC_RING_SIZE        MAX_RING

static ModelDisk *disk;         /* of drive0 */
static ModelDisk *disk1;        /* of drive1, for a hot-plugged device */
static ModelDisk *disk2;        /* of node disk2, which outlives its device */

/*
 * drive0 (node disk0) for the device of the qos graph; drive1 for one a
 * test hot-plugs, and node disk2, a -blockdev, which unlike a -drive is
 * not deleted with the device that used it; and two iothreads. @arg is
 * the iothread a hot-plugged device gets, or NULL.
 */
static void *lifecycle_setup(GString *cmd_line, void *arg)
{
    g_string_append(cmd_line, " -object iothread,id=iothread0"
                    " -object iothread,id=iothread1 ");
    model_disk_create(&disk, LC_DISK_SIZE);
    model_drive_append(cmd_line, "drive0", disk, ",node-name=disk0");
    model_disk_create(&disk1, LC_DISK_SIZE);
    model_drive_append(cmd_line, "drive1", disk1, "");
    model_disk_create(&disk2, LC_DISK_SIZE);
    g_string_append_printf(cmd_line,
                           " -blockdev driver=raw,node-name=disk2,"
                           "file.driver=file,file.filename=%s ",
                           disk2->path);
    return arg;
}

/* The VirtIODevice inside virtio-blk-pci device @id */
static char *lifecycle_vdev_path(const char *id)
{
    return g_strdup_printf("/machine/peripheral/%s/virtio-backend", id);
}

/* Limit the drive of device @id to @iops requests per second, 0: none */
static void lifecycle_throttle(const char *id, int iops)
{
    g_autofree char *path = lifecycle_vdev_path(id);

    qtest_qmp_assert_success(global_qtest,
                             "{ 'execute': 'block_set_io_throttle',"
                             "  'arguments': { 'id': %s, 'iops': %d,"
                             "    'iops_rd': 0, 'iops_wr': 0, 'bps': 0,"
                             "    'bps_rd': 0, 'bps_wr': 0 } }",
                             path, iops);
}

/*
 * Wait until device @id took all of @b off @vq, then check that it still
 * holds them all but at most one read and one write (what the device took
 * and has not used yet is "inuse"). Throttling lets one request through
 * at once; but block_set_io_throttle also restarts the queue of each
 * direction from a coroutine in the drive's AioContext, and when that runs
 * after the batch arrived, it lets the first read and the first write go.
 * x-query-virtio-queue-status reads the queue from the main loop while an
 * iothread may be between taking a head (last-avail-idx) and counting it
 * (inuse), so first wait until every request of @b is either in use or
 * in the used ring.
 */
static void lifecycle_check_held(const char *id, QVirtQueue *vq, Batch *b)
{
    g_autofree char *path = lifecycle_vdev_path(id);
    uint16_t avail = qtest_readw(global_qtest, vq->avail + 2);
    gint64 start = g_get_monotonic_time();
    uint16_t used;
    QDict *st;

    for (;;) {
        st = qtest_qmp_assert_success_ref(global_qtest,
                 "{ 'execute': 'x-query-virtio-queue-status',"
                 "  'arguments': { 'path': %s, 'queue': %d } }",
                 path, vq->index);
        used = qtest_readw(global_qtest, vq->used + 2) - vq->last_used_idx;
        if (qdict_get_int(st, "last-avail-idx") == avail &&
            qdict_get_int(st, "inuse") + used == b->nreqs) {
            break;
        }
        qobject_unref(st);
        g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
        g_usleep(1000);
    }
    g_assert_cmpint(qdict_get_int(st, "inuse"), >=, b->nreqs - 2);
    qobject_unref(st);
}

/*
 * Fill @b for @vq: writes, every fourth request a read, with gaps between
 * them so that the device cannot merge them. @full_ring: as many requests
 * as @vq has entries, each in an indirect table, so that they take all of
 * the device's request pool for @vq; else MAX_BATCH.
 */
static void lifecycle_fill_batch(QVirtioDevice *dev, QGuestAllocator *alloc,
                                 QVirtQueue *vq, ModelDisk *m, Batch *b,
                                 bool full_ring)
{
    const int nreqs = full_ring ? vq->size : MAX_BATCH;
    const uint64_t stride = m->size / SECTOR_SIZE / nreqs;
    int i;

    g_assert_cmpint(nreqs, <=, MAX_RING);
    b->max_reqs = nreqs;
    for (i = 0; i < nreqs; i++) {
        uint32_t type = i % 4 == 3 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
        uint64_t sector = i * stride + model_rand_range(0, stride / 2 - 1);
        uint32_t nsectors = model_rand_range(1, stride / 2);
        unsigned layout = full_ring || !model_rand_range(0, 2) ?
                          LAYOUT_INDIRECT : 0;

        g_assert_true(batch_add(dev, alloc, vq, m, b, type, sector,
                                nsectors * SECTOR_SIZE, layout));
    }
}

/* Throttle device @id and kick a batch into @vq that it holds */
static void lifecycle_kick_held(QVirtioDevice *dev, QGuestAllocator *alloc,
                                QVirtQueue *vq, ModelDisk *m, Batch *b,
                                const char *id, bool full_ring)
{
    lifecycle_fill_batch(dev, alloc, vq, m, b, full_ring);
    lifecycle_throttle(id, 1);
    batch_kick(vq, b);
    lifecycle_check_held(id, vq, b);
}

/* Start @dev (device @id) on @m, some random I/O, then a held batch */
static QVirtQueue *lifecycle_start_held(QVirtioDevice *dev,
                                       QGuestAllocator *alloc, ModelDisk *m,
                                       Batch *b, const char *id,
                                       bool full_ring)
{
    QVirtioPCIDevice *pdev = container_of(dev, QVirtioPCIDevice, vdev);
    QVirtQueue *vq;

    if (full_ring) {
        /* a virtio 1 driver may make the ring smaller (4.1.4.3.2) */
        dev->bus->queue_select(dev, 0);
        qpci_io_writew(pdev->pdev, pdev->bar, pdev->common_cfg_offset +
                       offsetof(struct virtio_pci_common_cfg, queue_size),
                       LC_RING_SIZE);
    }
    model_start_device(dev, alloc, m, &vq, 1, false);
    if (full_ring) {
        /* random I/O keeps several batches in flight: too many for it */
        g_assert_cmpuint(vq->size, ==, LC_RING_SIZE);
    } else {
        model_random_io(dev, alloc, m, &vq, 1, LC_NUM_REQUESTS);
    }
    lifecycle_kick_held(dev, alloc, vq, m, b, id, full_ring);
    return vq;
}

/*
 * Lift the limit of device @id: it must then use every request of @b on
 * @vq, and nothing more.
 */
static void lifecycle_release_held(const char *id, QGuestAllocator *alloc,
                                   QVirtQueue *vq, Batch *b)
{
    lifecycle_throttle(id, 0);
    batch_wait(vq, b);
    model_check_quiet(vq);
    batch_free(alloc, vq, b);
}

/*
 * @event drained the drive and left the device unable to use the rest of
 * @b (reset, unplugged): what it used must be right, nothing more may
 * come, and the image must hold every write of the batch.
 */
static void lifecycle_collect_held(QGuestAllocator *alloc, QVirtQueue *vq,
                                   ModelDisk *m, Batch *b, const char *event)
{
    g_test_message("%d of %d heads used before the %s",
                   batch_collect(vq, b), b->nreqs, event);
    model_check_quiet(vq);
    model_check_image(m);
    batch_free(alloc, vq, b);
}

/*
 * Unplug hot-plugged @hp, as an ACPI guest does it, until DEVICE_DELETED,
 * with batch @b held on the last of its @nvqs queues @vqs on @m.
 */
static void lifecycle_unplug_held(QVirtioPCIDevice *hp, QGuestAllocator *alloc,
                                  QVirtQueue **vqs, int nvqs, ModelDisk *m,
                                  Batch *b)
{
    int i;

    qpci_unplug_acpi_device_test(global_qtest, "drv1", MODEL_HOTPLUG_SLOT);
    lifecycle_collect_held(alloc, vqs[nvqs - 1], m, b, "unplug");
    for (i = 0; i < nvqs; i++) {
        qvirtqueue_cleanup(hp->vdev.bus, vqs[i], alloc);
    }
    qos_object_destroy((QOSGraphObject *)hp);
}

/* A system reset with a batch in flight, @full_ring: all of the pool */
static void lifecycle_reset_held(QVirtioPCIDevice *pdev,
                                 QGuestAllocator *alloc, bool full_ring)
{
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    QVirtQueue *vq;

    vq = lifecycle_start_held(dev, alloc, disk, b, "drv0", full_ring);
    qtest_qmp_assert_success(global_qtest, "{ 'execute': 'system_reset' }");
    qtest_qmp_eventwait(global_qtest, "RESET");
    lifecycle_collect_held(alloc, vq, disk, b, "reset");
    qvirtqueue_cleanup(dev->bus, vq, alloc);

    /* BARs and bus mastering went with the reset: start from scratch */
    qvirtio_pci_device_enable(pdev);
    qvirtio_start_device(dev);
    model_start_device(dev, alloc, disk, &vq, 1, false);
    lifecycle_throttle("drv0", 0);
    model_exercise(dev, alloc, disk, &vq, 1, LC_NUM_REQUESTS);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

static void test_lifecycle_reset(void *obj, void *data,
                                 QGuestAllocator *alloc)
{
    lifecycle_reset_held(obj, alloc, false);
}

static void test_lifecycle_reset_full_ring(void *obj, void *data,
                                           QGuestAllocator *alloc)
{
    lifecycle_reset_held(obj, alloc, true);
}

/*
 * An unplug with a batch in flight, in the AioContext of @iothread if not
 * NULL; @full_ring: all of the pool, which QEMU frees with the device
 * once every request is back in it.
 */
static void lifecycle_device_del_held(QVirtioPCIDevice *pdev,
                                      const char *iothread,
                                      QGuestAllocator *alloc, bool full_ring)
{
    g_autofree Batch *b = g_new0(Batch, 1);
    QDict *props = qdict_new();
    QVirtioPCIDevice *hp;
    QVirtQueue *vq;

    if (pdev->pdev->bus->not_hotpluggable) {
        qobject_unref(props);
        g_test_skip("pci bus does not support hotplug");
        return;
    }
    if (iothread) {
        qdict_put_str(props, "iothread", iothread);
    }
    hp = model_plug_device(pdev->pdev->bus, "drv1", "drive1", props);
    vq = lifecycle_start_held(&hp->vdev, alloc, disk1, b, "drv1", full_ring);
    lifecycle_unplug_held(hp, alloc, &vq, 1, disk1, b);
}

static void test_lifecycle_device_del(void *obj, void *data,
                                      QGuestAllocator *alloc)
{
    lifecycle_device_del_held(obj, data, alloc, false);
}

static void test_lifecycle_device_del_full_ring(void *obj, void *data,
                                                QGuestAllocator *alloc)
{
    lifecycle_device_del_held(obj, data, alloc, true);
}

/*
 * All of the device's request pool for the queue in use: a full ring
 * held, a notification with nothing new, then the ring drains and is
 * filled again without a limit. Every request must complete once and
 * right, whatever the pool reuses.
 */
static void test_lifecycle_full_ring(void *obj, void *data,
                                     QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    QVirtQueue *vq;

    vq = lifecycle_start_held(dev, alloc, disk, b, "drv0", true);
    dev->bus->virtqueue_kick(dev, vq);
    lifecycle_check_held("drv0", vq, b);
    lifecycle_release_held("drv0", alloc, vq, b);

    lifecycle_fill_batch(dev, alloc, vq, disk, b, true);
    batch_run(alloc, vq, b);
    model_check_quiet(vq);
    model_check_image(disk);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

static void test_lifecycle_resize(void *obj, void *data,
                                  QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    QVirtQueue *vq;

    vq = lifecycle_start_held(dev, alloc, disk, b, "drv0", false);

    /* block_resize drains the node, so the batch completes */
    qtest_qmp_assert_success(global_qtest,
                             "{ 'execute': 'block_resize',"
                             "  'arguments': { 'node-name': 'disk0',"
                             "                 'size': %d } }",
                             LC_DISK_SIZE + LC_GROWTH);
    batch_wait(vq, b);
    model_check_quiet(vq);
    batch_free(alloc, vq, b);
    model_disk_resize(disk, LC_DISK_SIZE + LC_GROWTH);
    model_check_image(disk);
    g_assert_cmpuint(qvirtio_config_readq(dev, 0), ==,
                     disk->size / SECTOR_SIZE);

    /* all of the disk, the new end too */
    lifecycle_throttle("drv0", 0);
    model_exercise(dev, alloc, disk, &vq, 1, LC_NUM_REQUESTS);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

/* Is the QEMU under test @major.@minor or later? */
static bool lifecycle_qemu_at_least(int64_t major, int64_t minor)
{
    QDict *rsp = qtest_qmp_assert_success_ref(global_qtest,
                     "{ 'execute': 'query-version' }");
    QDict *qemu = qdict_get_qdict(rsp, "qemu");
    int64_t have_major = qdict_get_int(qemu, "major");
    int64_t have_minor = qdict_get_int(qemu, "minor");

    qobject_unref(rsp);
    return have_major > major || (have_major == major && have_minor >= minor);
}

/*
 * Every request of @b on @vq is in the used ring within
 * LC_DRAINED_WAIT_US, without lifting the limit of 1 request a second:
 * something drained the drive, which executed them all. Takes nothing
 * off the used ring.
 */
static void lifecycle_check_drained(QVirtQueue *vq, Batch *b)
{
    gint64 start = g_get_monotonic_time();

    while ((uint16_t)(qtest_readw(global_qtest, vq->used + 2) -
                      vq->last_used_idx) != b->nreqs) {
        g_assert_cmpint(g_get_monotonic_time() - start, <=,
                        LC_DRAINED_WAIT_US);
        g_usleep(1000);
    }
}

/*
 * The device's BlockBackend refuses to leave the AioContext of its
 * iothread, even when forced. QEMU 10.0 refuses before it drains
 * anything: the batch stays held. From 10.1 on, x-blockdev-set-iothread
 * drains all nodes before it looks at the node (bdrv_drain_all_begin()
 * first, as the graph lock wants), which executes the held batch whatever
 * the limit: the refusal then finds it used.
 */
static void test_lifecycle_set_iothread(void *obj, void *data,
                                        QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    QVirtQueue *vq;
    QDict *rsp, *err;

    vq = lifecycle_start_held(dev, alloc, disk, b, "drv0", false);

    rsp = qtest_qmp(global_qtest,
                    "{ 'execute': 'x-blockdev-set-iothread',"
                    "  'arguments': { 'node-name': 'disk0',"
                    "                 'iothread': 'iothread1',"
                    "                 'force': true } }");
    err = qdict_get_qdict(rsp, "error");
    g_assert_nonnull(err);
    g_assert_cmpstr(qdict_get_str(err, "class"), ==, "GenericError");
    g_assert_cmpstr(qdict_get_str(err, "desc"), ==,
                    "Cannot change iothread of active block backend");
    qobject_unref(rsp);
    if (lifecycle_qemu_at_least(10, 1)) {
        lifecycle_check_drained(vq, b);
    } else {
        lifecycle_check_held("drv0", vq, b);
    }

    /* lifting the limit drains the drive */
    lifecycle_release_held("drv0", alloc, vq, b);
    model_check_image(disk);
    model_exercise(dev, alloc, disk, &vq, 1, LC_NUM_REQUESTS);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

/*
 * Random I/O in flight on all queues of a device whose queues two
 * iothreads share, then an unplug with a batch held on the last queue.
 */
static void test_lifecycle_vq_mapping(void *obj, void *data,
                                      QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    g_autofree Batch *b = g_new0(Batch, 1);
    QVirtQueue *vqs[LC_NUM_QUEUES];
    QVirtioPCIDevice *hp;
    QVirtioDevice *dev;

    hp = model_plug_mapped_device(pdev->pdev->bus, "drv1", "drive1",
                                  LC_NUM_QUEUES);
    if (!hp) {
        return;
    }
    dev = &hp->vdev;
    model_start_device(dev, alloc, disk1, vqs, LC_NUM_QUEUES, false);
    model_exercise(dev, alloc, disk1, vqs, LC_NUM_QUEUES, 2 * LC_NUM_REQUESTS);

    lifecycle_kick_held(dev, alloc, vqs[LC_NUM_QUEUES - 1], disk1, b,
                        "drv1", false);
    lifecycle_unplug_held(hp, alloc, vqs, LC_NUM_QUEUES, disk1, b);
}

/*
 * Node @node is in the AioContext of @iothread: a device's disk refuses
 * to move (see set-iothread-refused), but a "move" into the AioContext it
 * is already in succeeds without doing anything.
 */
static void lifecycle_assert_node_in(const char *node, const char *iothread)
{
    qtest_qmp_assert_success(global_qtest,
                             "{ 'execute': 'x-blockdev-set-iothread',"
                             "  'arguments': { 'node-name': %s,"
                             "                 'iothread': %s,"
                             "                 'force': true } }",
                             node, iothread);
}

/*
 * QEMU 10.0 keeps a device's disk in the AioContext the device put it in
 * (see set-iothread-refused); what moves a disk to another iothread is
 * unplugging its device and plugging one with the other iothread. Do it
 * with a batch in flight in the first iothread, then check the disk
 * whole through the second.
 */
static void test_lifecycle_move_iothread(void *obj, void *data,
                                         QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    g_autofree Batch *b = g_new0(Batch, 1);
    QVirtioPCIDevice *hp;
    QVirtQueue *vq;

    if (pdev->pdev->bus->not_hotpluggable) {
        g_test_skip("pci bus does not support hotplug");
        return;
    }
    hp = model_plug_device(pdev->pdev->bus, "drv1", "disk2",
                           qdict_from_jsonf_nofail(
                               "{ 'iothread': 'iothread0' }"));
    vq = lifecycle_start_held(&hp->vdev, alloc, disk2, b, "drv1", false);
    lifecycle_assert_node_in("disk2", "iothread0");
    lifecycle_unplug_held(hp, alloc, &vq, 1, disk2, b);

    hp = model_plug_device(pdev->pdev->bus, "drv1", "disk2",
                           qdict_from_jsonf_nofail(
                               "{ 'iothread': 'iothread1' }"));
    model_start_device(&hp->vdev, alloc, disk2, &vq, 1, false);
    lifecycle_assert_node_in("disk2", "iothread1");
    model_exercise(&hp->vdev, alloc, disk2, &vq, 1, LC_NUM_REQUESTS);
    qvirtqueue_cleanup(hp->vdev.bus, vq, alloc);
    qos_object_destroy((QOSGraphObject *)hp);
}

/*
 * Without and with an iothread for the device of the qos graph and, as
 * the test's argument, for the one it hot-plugs.
 */
static void register_lifecycle_tests(void)
{
    QOSGraphTestOptions opts = {
        .before = lifecycle_setup,
    };

    qos_add_test("lifecycle/system-reset-in-flight", "virtio-blk-pci",
                 test_lifecycle_reset, &opts);
    qos_add_test("lifecycle/device-del-in-flight", "virtio-blk-pci",
                 test_lifecycle_device_del, &opts);
    qos_add_test("lifecycle/block-resize-under-load", "virtio-blk-pci",
                 test_lifecycle_resize, &opts);
    qos_add_test("lifecycle/iothread-vq-mapping", "virtio-blk-pci",
                 test_lifecycle_vq_mapping, &opts);
    qos_add_test("lifecycle/move-to-other-iothread", "virtio-blk-pci",
                 test_lifecycle_move_iothread, &opts);
    qos_add_test("lifecycle/device-del-full-ring", "virtio-blk-pci",
                 test_lifecycle_device_del_full_ring, &opts);
    qos_add_test("lifecycle/full-ring", "virtio-blk-pci",
                 test_lifecycle_full_ring, &opts);
    qos_add_test("lifecycle/system-reset-full-ring", "virtio-blk-pci",
                 test_lifecycle_reset_full_ring, &opts);

    opts.arg = (void *)"iothread0";
    opts.edge.extra_device_opts = "iothread=iothread0";
    qos_add_test("lifecycle/system-reset-in-flight-iothread",
                 "virtio-blk-pci", test_lifecycle_reset, &opts);
    qos_add_test("lifecycle/device-del-in-flight-iothread",
                 "virtio-blk-pci", test_lifecycle_device_del, &opts);
    qos_add_test("lifecycle/block-resize-under-load-iothread",
                 "virtio-blk-pci", test_lifecycle_resize, &opts);
    qos_add_test("lifecycle/set-iothread-refused", "virtio-blk-pci",
                 test_lifecycle_set_iothread, &opts);
    qos_add_test("lifecycle/full-ring-iothread", "virtio-blk-pci",
                 test_lifecycle_full_ring, &opts);
}

libqos_init(register_lifecycle_tests);
