/*
 * QTest testcase for virtio-blk's per-virtqueue statistics (query-stats)
 * and its notification coalescing
 *
 * Each stats/ case sends batches of requests whose effect on the counters
 * is known exactly (each batch with one kick, so one pass over the ring),
 * checks every completion against the model (virtio-blk-model.c), then
 * checks each counter of target "virtio-blk", queue by queue; and that a
 * device reset zeroes them.
 *
 * The coalesce/ cases time the notifications the device sends (its
 * "notifications" counter) against the completions the driver sees by
 * polling the used ring.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest-single.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_ring.h"
#include "virtio-blk-model.h"

#define STATS_NUM_QUEUES    4
#define READ_AREA           (16 * 1024 * 1024 / SECTOR_SIZE)
#define VARIOUS_REQUESTS    12      /* in fill_various() */

static ModelDisk *disk;         /* of drive0 */
static ModelDisk *disk1;        /* of drive1, for a hot-plugged device */
static char *machine_cmdline;   /* all of it, for a migration target */

static void machine_cmdline_free(void *opaque)
{
    g_clear_pointer(&machine_cmdline, g_free);
}

/*
 * drive0 for the device of the qos graph, on null-co if @arg says so;
 * drive1 and two iothreads for one a test hot-plugs.
 */
static void *stats_setup(GString *cmd_line, void *arg)
{
    bool null = arg != NULL;

    model_disk_create(&disk, DISK_SIZE);
    if (null) {
        /* completes every read of a pass in one later pass: all zeroes */
        g_string_append_printf(cmd_line,
                               " -drive if=none,id=drive0,driver=null-co,"
                               "size=%d,read-zeroes=on ", DISK_SIZE);
    } else {
        model_drive_append(cmd_line, "drive0", disk, "");
    }
    model_disk_create(&disk1, DISK_SIZE);
    model_drive_append(cmd_line, "drive1", disk1, "");
    g_string_append(cmd_line, " -object iothread,id=iothread0"
                    " -object iothread,id=iothread1 ");
    machine_cmdline = g_strdup(cmd_line->str);
    g_test_queue_destroy(machine_cmdline_free, NULL);
    return arg;
}

/*
 * The statistics of the one device query-stats answers for, with a filter
 * of @devices (a JSON list of QOM paths) if not NULL, as a dictionary
 * from name to list of per-queue values. Its QOM path goes to *@path if
 * @path is not NULL.
 */
static QDict *query_stats(const char *devices, char **path)
{
    QDict *args = qdict_new();
    QDict *rsp, *result, *stats = qdict_new();
    QList *results;
    QListEntry *e;

    qdict_put_str(args, "target", "virtio-blk");
    if (devices) {
        qdict_put_obj(args, "devices", qobject_from_json(devices,
                                                         &error_abort));
    }
    rsp = qtest_qmp(global_qtest,
                    "{ 'execute': 'query-stats', 'arguments': %p }", args);
    results = qdict_get_qlist(rsp, "return");
    g_assert_nonnull(results);
    g_assert_cmpint(qlist_size(results), ==, 1);
    result = qobject_to(QDict, qlist_peek(results));
    g_assert_cmpstr(qdict_get_str(result, "provider"), ==, "virtio-blk");
    if (path) {
        *path = g_strdup(qdict_get_str(result, "qom-path"));
    }
    QLIST_FOREACH_ENTRY(qdict_get_qlist(result, "stats"), e) {
        QDict *stat = qobject_to(QDict, qlist_entry_obj(e));

        qdict_put_obj(stats, qdict_get_str(stat, "name"),
                      qobject_ref(qdict_get(stat, "value")));
    }
    qobject_unref(rsp);
    return stats;
}

/* Statistic @name of @stats must be @want, one value per queue */
static void check_stat(QDict *stats, const char *name, const uint64_t *want,
                       int nqueues)
{
    QList *values = qdict_get_qlist(stats, name);
    QListEntry *e;
    int q = 0;

    g_assert_nonnull(values);
    QLIST_FOREACH_ENTRY(values, e) {
        uint64_t got = qnum_get_uint(qobject_to(QNum, qlist_entry_obj(e)));

        g_assert_cmpint(q, <, nqueues);
        if (got != want[q]) {
            g_test_message("%s of queue %d", name, q);
        }
        g_assert_cmpuint(got, ==, want[q]);
        q++;
    }
    g_assert_cmpint(q, ==, nqueues);
}

/* The same, for a device with one queue */
static void check_stat1(QDict *stats, const char *name, uint64_t want)
{
    check_stat(stats, name, &want, 1);
}

static void add(QVirtioDevice *dev, QGuestAllocator *alloc, QVirtQueue *vq,
                ModelDisk *m, Batch *b, uint32_t type, uint64_t sector,
                uint32_t nbytes, uint8_t want_status)
{
    Request *r = &b->reqs[b->nreqs];

    g_assert_true(batch_add(dev, alloc, vq, m, b, type, sector, nbytes,
                            LAYOUT_ONE_DATA_DESC));
    r->want_status = want_status;
    if (want_status != VIRTIO_BLK_S_OK) {
        /* a failed read leaves its buffer as it was: nothing to compare */
        g_clear_pointer(&r->data, g_free);
    }
}

static void run_batch(QGuestAllocator *alloc, QVirtQueue *vq, Batch *b)
{
    batch_run(alloc, vq, b);
    b->max_reqs = MAX_RING;
}

/*
 * 8 sequential reads (one I/O), a FLUSH, a GET_ID, a type the device does
 * not know (UNSUPP), a read of a partial sector (IOERR).
 */
static void fill_various(QVirtioDevice *dev, QGuestAllocator *alloc,
                         QVirtQueue *vq, Batch *b)
{
    int i;

    for (i = 0; i < 8; i++) {
        add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_IN, READ_AREA + 8 * i, 4096,
            VIRTIO_BLK_S_OK);
    }
    add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_FLUSH, 0, 0, VIRTIO_BLK_S_OK);
    add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES,
        VIRTIO_BLK_S_OK);
    add(dev, alloc, vq, disk, b, 0x7fff, 0, 0, VIRTIO_BLK_S_UNSUPP);
    add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_IN, 0, 100, VIRTIO_BLK_S_IOERR);
    g_assert_cmpint(b->nreqs, ==, VARIOUS_REQUESTS);
}

/*
 * Requests by type, bytes, merges, passes, the pool and the statuses,
 * counted exactly; then a device reset zeroes everything.
 */
static void test_stats_counts(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    g_autofree char *hmp = NULL;
    g_autofree char *path = NULL;
    g_autofree char *filter = NULL;
    QDict *stats;
    QVirtQueue *vq;
    const QDictEntry *e;
    int i;

    model_start_device(dev, alloc, disk, &vq, 1, false);
    b->max_reqs = MAX_RING;

    /* 64 sequential writes: a merge list holds 32, so two I/Os */
    for (i = 0; i < 64; i++) {
        add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_OUT, 8 * i, 4096,
            VIRTIO_BLK_S_OK);
    }
    run_batch(alloc, vq, b);
    stats = query_stats(NULL, &path);
    check_stat1(stats, "requests", 64);
    check_stat1(stats, "batches", 1);
    check_stat1(stats, "batch-peak", 64);
    check_stat1(stats, "writes", 64);
    check_stat1(stats, "write-bytes", 64 * 4096);
    check_stat1(stats, "merged-requests", 64);
    check_stat1(stats, "merged-ios", 2);
    check_stat1(stats, "in-flight", 0);
    /* all popped before the first completes: the pool grew to 64 */
    check_stat1(stats, "in-flight-peak", 64);
    check_stat1(stats, "pool-size", 64);
    check_stat1(stats, "reads", 0);
    qobject_unref(stats);

    fill_various(dev, alloc, vq, b);
    run_batch(alloc, vq, b);
    stats = query_stats(NULL, NULL);
    check_stat1(stats, "requests", 64 + VARIOUS_REQUESTS);
    check_stat1(stats, "batches", 2);
    check_stat1(stats, "batch-peak", 64);
    check_stat1(stats, "reads", 8);
    check_stat1(stats, "read-bytes", 8 * 4096);
    check_stat1(stats, "writes", 64);
    check_stat1(stats, "flushes", 1);
    check_stat1(stats, "discards", 0);
    check_stat1(stats, "write-zeroes", 0);
    check_stat1(stats, "merged-requests", 64 + 8);
    check_stat1(stats, "merged-ios", 2 + 1);
    check_stat1(stats, "ioerr", 1);
    check_stat1(stats, "unsupp", 1);
    check_stat1(stats, "held", 0);
    /* the pool reused its requests */
    check_stat1(stats, "pool-size", 64);
    check_stat1(stats, "in-flight-peak", 64);
    /* every pass that published sent a notification: none suppressed */
    check_stat1(stats, "notifications-suppressed", 0);
    qobject_unref(stats);

    /* the devices filter takes the device's own QOM path */
    filter = g_strdup_printf("[ '%s' ]", path);
    stats = query_stats(filter, NULL);
    check_stat1(stats, "requests", 64 + VARIOUS_REQUESTS);
    qobject_unref(stats);

    /* HMP names the device and counts queues from 0 */
    hmp = qtest_hmp(global_qtest, "info stats virtio-blk requests");
    g_assert_nonnull(strstr(hmp, path));
    g_assert_nonnull(strstr(hmp, "requests (cumulative): [0]=76"));

    /* A reset zeroes the counters; the pool keeps its requests */
    qvirtio_reset(dev);
    stats = query_stats(NULL, NULL);
    for (e = qdict_first(stats); e; e = qdict_next(stats, e)) {
        check_stat1(stats, qdict_entry_key(e),
                    strcmp(qdict_entry_key(e), "pool-size") ? 0 : 64);
    }
    qobject_unref(stats);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

/*
 * Reads far apart on null-co, which completes those of a pass in one
 * later pass: one notification for each batch, or one suppressed when
 * the driver asks for no interrupts (VRING_AVAIL_F_NO_INTERRUPT). Then
 * requests that complete while the device pops them (GET_ID, UNSUPP,
 * IOERR), with nothing in flight: one notification for all of them too.
 */
static void test_stats_notifications(void *obj, void *data,
                                     QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    QDict *stats;
    QVirtQueue *vq;
    int i;

    model_start_device(dev, alloc, disk, &vq, 1, false);
    b->max_reqs = MAX_RING;
    for (i = 0; i < 16; i++) {
        add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_IN, 1000 * i, 4096,
            VIRTIO_BLK_S_OK);
    }
    run_batch(alloc, vq, b);
    stats = query_stats(NULL, NULL);
    check_stat1(stats, "notifications", 1);
    check_stat1(stats, "notifications-suppressed", 0);
    check_stat1(stats, "merged-ios", 0);
    qobject_unref(stats);

    qtest_writew(global_qtest, vq->avail, VRING_AVAIL_F_NO_INTERRUPT);
    for (i = 0; i < 16; i++) {
        add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_IN, 1000 * i, 4096,
            VIRTIO_BLK_S_OK);
    }
    run_batch(alloc, vq, b);     /* the used ring is polled */
    stats = query_stats(NULL, NULL);
    check_stat1(stats, "notifications", 1);
    check_stat1(stats, "notifications-suppressed", 1);
    check_stat1(stats, "requests", 32);
    qobject_unref(stats);

    qtest_writew(global_qtest, vq->avail, 0);
    for (i = 0; i < 4; i++) {
        add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_GET_ID, 0,
            VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_OK);
    }
    add(dev, alloc, vq, disk, b, 0x7fff, 0, 0, VIRTIO_BLK_S_UNSUPP);
    add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_IN, 0, 100, VIRTIO_BLK_S_IOERR);
    run_batch(alloc, vq, b);
    stats = query_stats(NULL, NULL);
    check_stat1(stats, "notifications", 2);
    check_stat1(stats, "notifications-suppressed", 1);
    check_stat1(stats, "requests", 38);
    check_stat1(stats, "batches", 3);
    qobject_unref(stats);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

/*
 * A device with four queues that two iothreads share: each queue counts
 * its own requests, read in the iothread that serves it.
 */
static void test_stats_vq_mapping(void *obj, void *data,
                                  QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    g_autofree Batch *b = g_new0(Batch, 1);
    g_autofree char *path = NULL;
    QVirtQueue *vqs[STATS_NUM_QUEUES];
    uint64_t want_reqs[STATS_NUM_QUEUES], want_batches[STATS_NUM_QUEUES];
    QVirtioPCIDevice *hp;
    QDict *stats;
    int q, i;

    hp = model_plug_mapped_device(pdev->pdev->bus, "drv1", "drive1",
                                  STATS_NUM_QUEUES);
    if (!hp) {
        return;
    }
    model_start_device(&hp->vdev, alloc, disk1, vqs, STATS_NUM_QUEUES, false);
    b->max_reqs = MAX_RING;

    for (q = 0; q < STATS_NUM_QUEUES; q++) {
        want_reqs[q] = 4 * (q + 1);
        want_batches[q] = 1;
        for (i = 0; i < want_reqs[q]; i++) {
            add(&hp->vdev, alloc, vqs[q], disk1, b, VIRTIO_BLK_T_IN,
                READ_AREA + 1000 * i, 4096, VIRTIO_BLK_S_OK);
        }
        run_batch(alloc, vqs[q], b);
    }

    /* by the proxy's path; the result names the device itself */
    stats = query_stats("[ '/machine/peripheral/drv1' ]", &path);
    g_assert_cmpstr(path, ==, "/machine/peripheral/drv1/virtio-backend");
    check_stat(stats, "requests", want_reqs, STATS_NUM_QUEUES);
    check_stat(stats, "reads", want_reqs, STATS_NUM_QUEUES);
    check_stat(stats, "batches", want_batches, STATS_NUM_QUEUES);
    check_stat(stats, "batch-peak", want_reqs, STATS_NUM_QUEUES);
    qobject_unref(stats);
    for (q = 0; q < STATS_NUM_QUEUES; q++) {
        qvirtqueue_cleanup(hp->vdev.bus, vqs[q], alloc);
    }
    qos_object_destroy((QOSGraphObject *)hp);
}

/* --- Notification coalescing --------------------------------------- */

/* The longest coalesce-delay-us: VIRTIO_BLK_COALESCE_MAX_DELAY_US */
#define COALESCE_DELAY_US   1000000
/* What a loaded machine may add to a deadline */
#define COALESCE_SLACK_US   (2 * 1000 * 1000)

static uint64_t stat_of_queue0(const char *name)
{
    QDict *stats = query_stats(NULL, NULL);
    QList *values = qdict_get_qlist(stats, name);
    uint64_t value;

    g_assert_nonnull(values);
    value = qnum_get_uint(qobject_to(QNum, qlist_peek(values)));
    qobject_unref(stats);
    return value;
}

/* Wait until the device sent @n notifications; return when, in us */
static int64_t wait_notifications(uint64_t n)
{
    int64_t start = g_get_monotonic_time();

    while (stat_of_queue0("notifications") < n) {
        g_assert_cmpint(g_get_monotonic_time() - start, <, TIMEOUT_US);
        g_usleep(10 * 1000);
    }
    return g_get_monotonic_time();
}

/* Kick 16 reads far apart and poll the used ring for them */
static void run_reads(QVirtioDevice *dev, QGuestAllocator *alloc,
                      QVirtQueue *vq, Batch *b, bool flush)
{
    int i;

    for (i = 0; i < 16; i++) {
        add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_IN, 1000 * i, 4096,
            VIRTIO_BLK_S_OK);
    }
    if (flush) {
        add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_FLUSH, 0, 0,
            VIRTIO_BLK_S_OK);
    }
    run_batch(alloc, vq, b);
}

/*
 * run_reads() a batch whose completions the driver sees well within the
 * delay, so that a notification after them was held; return the kick's
 * time.
 */
static int64_t run_reads_within_delay(QVirtioDevice *dev,
                                      QGuestAllocator *alloc,
                                      QVirtQueue *vq, Batch *b)
{
    int64_t kicked = g_get_monotonic_time();

    run_reads(dev, alloc, vq, b, false);
    g_assert_cmpint(g_get_monotonic_time() - kicked, <, COALESCE_DELAY_US);
    return kicked;
}

/*
 * A busy queue (no threshold): the driver sees the completions at once,
 * the notification comes the delay after them, not before and not much
 * later; a batch that completes while one is held joins it.
 */
static void test_coalesce_bound(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    int64_t kicked, used, notified;
    QVirtQueue *vq;

    model_start_device(dev, alloc, disk, &vq, 1, false);
    b->max_reqs = MAX_RING;

    kicked = run_reads_within_delay(dev, alloc, vq, b);
    used = g_get_monotonic_time();
    notified = wait_notifications(1);
    g_assert_cmpint(notified - kicked, >=, COALESCE_DELAY_US);
    g_assert_cmpint(notified - used, <=, COALESCE_DELAY_US + COALESCE_SLACK_US);
    g_assert_cmpuint(stat_of_queue0("notifications-coalesced"), ==, 0);

    /* two batches within the delay: one notification */
    kicked = g_get_monotonic_time();
    run_reads(dev, alloc, vq, b, false);
    run_reads(dev, alloc, vq, b, false);
    g_assert_cmpint(g_get_monotonic_time() - kicked, <, COALESCE_DELAY_US);
    notified = wait_notifications(2);
    g_assert_cmpint(notified - kicked, >=, COALESCE_DELAY_US);
    g_assert_cmpuint(stat_of_queue0("notifications-coalesced"), ==, 1);
    g_assert_cmpuint(stat_of_queue0("notifications"), ==, 2);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

/* A FLUSH completion is notified at once, with the reads before it */
static void test_coalesce_flush(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    int64_t kicked;
    QVirtQueue *vq;

    model_start_device(dev, alloc, disk, &vq, 1, false);
    b->max_reqs = MAX_RING;
    kicked = g_get_monotonic_time();
    run_reads(dev, alloc, vq, b, true);
    g_assert_cmpint(wait_notifications(1) - kicked, <, COALESCE_DELAY_US);
    /* and the timer of the held reads is gone with it */
    g_usleep(COALESCE_DELAY_US + 100 * 1000);
    g_assert_cmpuint(stat_of_queue0("notifications"), ==, 1);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

/* Below the IOPS threshold nothing is held */
static void test_coalesce_below_threshold(void *obj, void *data,
                                          QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    int64_t kicked;
    QVirtQueue *vq;
    int i;

    model_start_device(dev, alloc, disk, &vq, 1, false);
    b->max_reqs = MAX_RING;
    for (i = 1; i <= 3; i++) {
        kicked = g_get_monotonic_time();
        run_reads(dev, alloc, vq, b, false);
        g_assert_cmpint(wait_notifications(i) - kicked, <,
                        COALESCE_DELAY_US);
    }
    g_assert_cmpuint(stat_of_queue0("notifications-coalesced"), ==, 0);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

/*
 * A VM stopped while a notification is held: stop drains the drive,
 * which sends it; the device works on after cont.
 */
static void test_coalesce_stop(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    int64_t kicked;
    QVirtQueue *vq;

    model_start_device(dev, alloc, disk, &vq, 1, false);
    b->max_reqs = MAX_RING;
    kicked = run_reads_within_delay(dev, alloc, vq, b);
    qtest_qmp_assert_success(global_qtest, "{ 'execute': 'stop' }");
    g_assert_cmpuint(stat_of_queue0("notifications"), ==, 1);
    g_assert_cmpint(g_get_monotonic_time() - kicked, >=, COALESCE_DELAY_US);
    qtest_qmp_assert_success(global_qtest, "{ 'execute': 'cont' }");

    run_reads(dev, alloc, vq, b, false);
    wait_notifications(2);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

/*
 * A running VM migrated while a notification is held: the migration
 * stops the VM, which drains the drive, and so the notification goes
 * out before the device's state is saved (nothing held travels in the
 * stream). The target then serves the queue where the source left it,
 * coalescing as the source did.
 */
static void test_coalesce_migrate(void *obj, void *data,
                                  QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    QPCIBus *bus = pdev->pdev->bus;
    g_autofree Batch *b = g_new0(Batch, 1);
    g_autofree char *path = g_strdup_printf("%s/virtio-blk-coalesce.%d",
                                            g_get_tmp_dir(), getpid());
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autofree char *dst_args = g_strdup_printf("%s -incoming defer",
                                                machine_cmdline);
    QTestState *src = global_qtest;
    QTestState *dst;
    QVirtQueue *vq;

    model_start_device(dev, alloc, disk, &vq, 1, false);
    b->max_reqs = MAX_RING;
    run_reads_within_delay(dev, alloc, vq, b);

    qtest_qmp_assert_success(src, "{ 'execute': 'migrate',"
                             "  'arguments': { 'uri': %s } }", uri);
    model_migrate_wait(src, "completed");
    g_assert_cmpuint(stat_of_queue0("notifications"), ==, 1);

    /* The guest lives on in the target, which the test now drives */
    dst = qtest_init_with_env("QTEST_QEMU_BINARY_DST", dst_args, true);
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming',"
                             "  'arguments': { 'uri': %s } }", uri);
    model_migrate_wait(dst, "completed");
    global_qtest = dst;
    bus->qts = dst;
    g_assert_cmpuint(stat_of_queue0("notifications"), ==, 0);
    run_reads_within_delay(dev, alloc, vq, b);
    wait_notifications(1);
    g_assert_cmpuint(stat_of_queue0("notifications"), ==, 1);

    bus->qts = src;
    global_qtest = src;
    qtest_quit(dst);
    unlink(path);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

static void register_virtio_blk_stats_test(void)
{
    QOSGraphTestOptions opts = {
        .before = stats_setup,
    };

    qos_add_test("stats/counts", "virtio-blk-pci", test_stats_counts, &opts);
    qos_add_test("stats/iothread-vq-mapping", "virtio-blk-pci",
                 test_stats_vq_mapping, &opts);
    opts.arg = (void *)"null";
    qos_add_test("stats/notifications", "virtio-blk-pci",
                 test_stats_notifications, &opts);
    opts.edge.extra_device_opts = "iothread=iothread0";
    qos_add_test("stats/notifications-iothread", "virtio-blk-pci",
                 test_stats_notifications, &opts);

    opts.edge.extra_device_opts = "coalesce-delay-us="
                                  stringify(COALESCE_DELAY_US);
    qos_add_test("coalesce/bound", "virtio-blk-pci", test_coalesce_bound,
                 &opts);
    qos_add_test("coalesce/flush", "virtio-blk-pci", test_coalesce_flush,
                 &opts);
    qos_add_test("coalesce/stop-cont", "virtio-blk-pci", test_coalesce_stop,
                 &opts);
    qos_add_test("coalesce/migrate", "virtio-blk-pci", test_coalesce_migrate,
                 &opts);
    opts.edge.extra_device_opts = "iothread=iothread0,coalesce-delay-us="
                                  stringify(COALESCE_DELAY_US);
    qos_add_test("coalesce/bound-iothread", "virtio-blk-pci",
                 test_coalesce_bound, &opts);
    qos_add_test("coalesce/stop-cont-iothread", "virtio-blk-pci",
                 test_coalesce_stop, &opts);
    opts.edge.extra_device_opts = "coalesce-delay-us="
                                  stringify(COALESCE_DELAY_US)
                                  ",coalesce-iops-threshold=100000000";
    qos_add_test("coalesce/below-threshold", "virtio-blk-pci",
                 test_coalesce_below_threshold, &opts);
}

libqos_init(register_virtio_blk_stats_test);
