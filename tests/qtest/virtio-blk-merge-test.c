/*
 * QTest testcase for virtio-blk request merging and batched completion
 *
 * The reads and writes one kick makes available are merged by the device
 * into as few I/Os as the backend takes (hw/block/virtio-blk-merge.c).
 * query-blockstats counts both: *_operations counts requests and *_merged
 * the requests that went into another one's I/O, so that operations
 * minus merged is the number of I/Os. Each case sends a batch or two,
 * each with one kick, checks those counts exactly, checks every read
 * against the model (virtio-blk-model.c), and reads the disk back
 * through the device and from the image. The batch/ cases count the used
 * index updates and interrupts of completions (see below).
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest-single.h"
#include "qemu/module.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "standard-headers/linux/virtio_blk.h"
#include "virtio-blk-model.h"
#include "virtio-blk-ring.h"

#define MERGE_MAX_TRANSFER  (64 * 1024)     /* of the blkdebug drive */
#define MERGE_MAX_IOV       1024            /* IOV_MAX, as null and file */
#define MAX_MERGE_REQS      32              /* VIRTIO_BLK_MAX_MERGE_REQS */
#define READ_AREA           (16 * 1024 * 1024 / SECTOR_SIZE)

static ModelDisk *disk;

/* What query-blockstats counts for drive0 */
typedef struct IOCounts {
    int64_t rd_ops, rd_merged;
    int64_t wr_ops, wr_merged;
    int64_t flush_ops;
} IOCounts;

typedef struct MergeCase {
    /* add the requests of the case to @b (and maybe run some before) */
    void (*fill)(QVirtioDevice *dev, QGuestAllocator *alloc, QVirtQueue *vq,
                 Batch *b);
    IOCounts want;              /* what the batch adds to the counts */
    bool max_transfer;          /* drive0 is limited to MERGE_MAX_TRANSFER */
} MergeCase;

static void *merge_setup(GString *cmd_line, void *arg)
{
    const MergeCase *mc = arg;

    model_disk_create(&disk, DISK_SIZE);
    if (mc->max_transfer) {
        /* blkdebug between the format and the file sets max_transfer */
        g_string_append_printf(cmd_line,
                               " -drive if=none,id=drive0,format=raw,"
                               "auto-read-only=off,file.driver=blkdebug,"
                               "file.max-transfer=%d,file.image.driver=file,"
                               "file.image.filename=%s ",
                               MERGE_MAX_TRANSFER, disk->path);
    } else {
        model_drive_append(cmd_line, "drive0", disk, "");
    }
    return arg;
}

static IOCounts query_io_counts(void)
{
    QDict *rsp = qtest_qmp(global_qtest, "{ 'execute': 'query-blockstats' }");
    QListEntry *e;
    IOCounts c = {};
    bool found = false;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *dev = qobject_to(QDict, qlist_entry_obj(e));
        QDict *stats;

        if (g_strcmp0(qdict_get_try_str(dev, "device"), "drive0")) {
            continue;
        }
        stats = qdict_get_qdict(dev, "stats");
        c.rd_ops = qdict_get_int(stats, "rd_operations");
        c.rd_merged = qdict_get_int(stats, "rd_merged");
        c.wr_ops = qdict_get_int(stats, "wr_operations");
        c.wr_merged = qdict_get_int(stats, "wr_merged");
        c.flush_ops = qdict_get_int(stats, "flush_operations");
        found = true;
    }
    qobject_unref(rsp);
    g_assert_true(found);
    return c;
}

static void add(QVirtioDevice *dev, QGuestAllocator *alloc, QVirtQueue *vq,
                Batch *b, uint32_t type, uint64_t sector, uint32_t nbytes,
                unsigned layout)
{
    g_assert_true(batch_add(dev, alloc, vq, disk, b, type, sector, nbytes,
                            layout));
}

/* 64 sequential 4K writes: a list holds 32, so two I/Os */
static void fill_sequential_writes(QVirtioDevice *dev, QGuestAllocator *alloc,
                                   QVirtQueue *vq, Batch *b)
{
    int i;

    for (i = 0; i < 2 * MAX_MERGE_REQS; i++) {
        add(dev, alloc, vq, b, VIRTIO_BLK_T_OUT, 8 * i, 4096,
            LAYOUT_ONE_DATA_DESC);
    }
}

/* Sequential reads and sequential writes, alternating: each stream merges */
static void fill_interleaved(QVirtioDevice *dev, QGuestAllocator *alloc,
                             QVirtQueue *vq, Batch *b)
{
    int i;

    for (i = 0; i < MAX_MERGE_REQS; i++) {
        add(dev, alloc, vq, b, VIRTIO_BLK_T_IN, READ_AREA + 8 * i, 4096,
            LAYOUT_ONE_DATA_DESC);
        add(dev, alloc, vq, b, VIRTIO_BLK_T_OUT, 8 * i, 4096,
            LAYOUT_ONE_DATA_DESC);
    }
}

/* 16 sequential reads, last first: sorted, they make one I/O */
static void fill_reversed_reads(QVirtioDevice *dev, QGuestAllocator *alloc,
                                QVirtQueue *vq, Batch *b)
{
    int i;

    for (i = 15; i >= 0; i--) {
        add(dev, alloc, vq, b, VIRTIO_BLK_T_IN, 8 * i, 4096,
            LAYOUT_ONE_DATA_DESC);
    }
}

/* Kick what @b holds and wait for it, then take a new batch in @b */
static void run_batch(QGuestAllocator *alloc, QVirtQueue *vq, Batch *b)
{
    batch_run(alloc, vq, b);
    b->max_reqs = MAX_RING;
}

/*
 * Sequential writes of MAX_DATA_DESCS buffers each: first as many as make
 * exactly MERGE_MAX_IOV buffers, one I/O; then one more than that, which
 * makes two.
 */
static void fill_max_iov(QVirtioDevice *dev, QGuestAllocator *alloc,
                         QVirtQueue *vq, Batch *b)
{
    const int per_io = MERGE_MAX_IOV / MAX_DATA_DESCS;
    uint32_t nbytes = MAX_DATA_DESCS * SECTOR_SIZE;
    int i;

    QEMU_BUILD_BUG_ON(MERGE_MAX_IOV % MAX_DATA_DESCS);
    for (i = 0; i < per_io; i++) {
        add(dev, alloc, vq, b, VIRTIO_BLK_T_OUT, i * MAX_DATA_DESCS, nbytes,
            LAYOUT_MAX_DATA_DESCS);
    }
    run_batch(alloc, vq, b);
    for (i = 0; i < per_io + 1; i++) {
        add(dev, alloc, vq, b, VIRTIO_BLK_T_OUT, (per_io + i) * MAX_DATA_DESCS,
            nbytes, LAYOUT_MAX_DATA_DESCS);
    }
}

/*
 * Sequential 4K writes, one buffer each: first as many as make exactly
 * MERGE_MAX_TRANSFER bytes, one I/O; then one more than that, two I/Os.
 */
static void fill_max_transfer(QVirtioDevice *dev, QGuestAllocator *alloc,
                              QVirtQueue *vq, Batch *b)
{
    const int per_io = MERGE_MAX_TRANSFER / 4096;
    int i;

    for (i = 0; i < per_io; i++) {
        add(dev, alloc, vq, b, VIRTIO_BLK_T_OUT, 8 * i, 4096,
            LAYOUT_ONE_DATA_DESC);
    }
    run_batch(alloc, vq, b);
    for (i = 0; i < per_io + 1; i++) {
        add(dev, alloc, vq, b, VIRTIO_BLK_T_OUT, 8 * (per_io + i), 4096,
            LAYOUT_ONE_DATA_DESC);
    }
}

/* Two sequential writes, a FLUSH, two more: none merges across the FLUSH */
static void fill_flush_barrier(QVirtioDevice *dev, QGuestAllocator *alloc,
                               QVirtQueue *vq, Batch *b)
{
    add(dev, alloc, vq, b, VIRTIO_BLK_T_OUT, 0, 4096, LAYOUT_ONE_DATA_DESC);
    add(dev, alloc, vq, b, VIRTIO_BLK_T_OUT, 8, 4096, LAYOUT_ONE_DATA_DESC);
    add(dev, alloc, vq, b, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
    add(dev, alloc, vq, b, VIRTIO_BLK_T_OUT, 16, 4096, LAYOUT_ONE_DATA_DESC);
    add(dev, alloc, vq, b, VIRTIO_BLK_T_OUT, 24, 4096, LAYOUT_ONE_DATA_DESC);
}

/* 8 sequential reads and 8 sequential writes (with request-merging=off) */
static void fill_unmerged(QVirtioDevice *dev, QGuestAllocator *alloc,
                          QVirtQueue *vq, Batch *b)
{
    int i;

    for (i = 0; i < 8; i++) {
        add(dev, alloc, vq, b, VIRTIO_BLK_T_OUT, 8 * i, 4096,
            LAYOUT_ONE_DATA_DESC);
        add(dev, alloc, vq, b, VIRTIO_BLK_T_IN, READ_AREA + 8 * i, 4096,
            LAYOUT_ONE_DATA_DESC);
    }
}

static void test_merge(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    const MergeCase *mc = data;
    g_autofree Batch *b = g_new0(Batch, 1);
    IOCounts before, after;
    QVirtQueue *vq;

    model_start_device(dev, alloc, disk, &vq, 1, false);
    b->max_reqs = MAX_RING;

    before = query_io_counts();
    mc->fill(dev, alloc, vq, b);
    run_batch(alloc, vq, b);     /* one kick; every read checked */
    after = query_io_counts();

    g_assert_cmpint(after.rd_ops - before.rd_ops, ==, mc->want.rd_ops);
    g_assert_cmpint(after.rd_merged - before.rd_merged, ==,
                    mc->want.rd_merged);
    g_assert_cmpint(after.wr_ops - before.wr_ops, ==, mc->want.wr_ops);
    g_assert_cmpint(after.wr_merged - before.wr_merged, ==,
                    mc->want.wr_merged);
    g_assert_cmpint(after.flush_ops - before.flush_ops, ==,
                    mc->want.flush_ops);

    model_read_back(dev, alloc, disk, vq);
    model_check_image(disk);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

/*
 * --- Completions of one event-loop pass, published together -------------
 *
 * Reads far apart, so that none merges, on null-co, which completes each
 * in the same pass of the event loop: the device must make them visible
 * with one used index update and notify the guest once, with and without
 * EVENT_IDX. Its trace events count both (the log backend, to a file):
 * virtio_blk_publish_used is one used index update, virtio_notify one
 * interrupt sent (an MSI-X message on virtio-blk-pci). query-blockstats
 * must count every read, also when a publish holds more than it accounts
 * in one go.
 */
typedef struct PassCase {
    bool event_idx;
    /*
     * Reads in the batch; above VIRTIO_BLK_ACCT_BATCH (64), the publish
     * accounts its successes in more than one go
     */
    int reads;
    char *log;                  /* QEMU's trace output */
} PassCase;

static void *pass_setup(GString *cmd_line, void *arg)
{
    PassCase *pc = arg;
    int fd;

    model_disk_create(&disk, DISK_SIZE);    /* all zeroes, as null-co reads */
    g_free(pc->log);
    fd = g_file_open_tmp("virtio-blk-pass-XXXXXX.log", &pc->log, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    g_string_append_printf(cmd_line,
                           " -drive if=none,id=drive0,driver=null-co,"
                           "size=%d,read-zeroes=on"
                           " -D %s -trace virtio_blk_publish_used"
                           " -trace virtio_notify ",
                           DISK_SIZE, pc->log);
    return arg;
}

static void test_one_update_per_pass(void *obj, void *data,
                                     QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    PassCase *pc = data;
    g_autofree Batch *b = g_new0(Batch, 1);
    uint64_t published = 0;
    int updates, notifies, i;
    IOCounts before, after;
    QVirtQueue *vq;

    model_start_device(dev, alloc, disk, &vq, 1, pc->event_idx);
    b->max_reqs = MAX_RING;
    updates = vbr_count_events(global_qtest, pc->log,
                               "virtio_blk_publish_used", NULL);
    notifies = vbr_count_events(global_qtest, pc->log, "virtio_notify", NULL);

    before = query_io_counts();
    for (i = 0; i < pc->reads; i++) {
        add(dev, alloc, vq, b, VIRTIO_BLK_T_IN, 200 * i, 4096,
            LAYOUT_ONE_DATA_DESC);
    }
    run_batch(alloc, vq, b);
    after = query_io_counts();

    g_assert_cmpint(vbr_count_events(global_qtest, pc->log,
                                     "virtio_blk_publish_used",
                                     &published) - updates, ==, 1);
    g_assert_cmpuint(published, ==, pc->reads);
    g_assert_cmpint(after.rd_ops - before.rd_ops, ==, pc->reads);
    g_assert_cmpint(after.rd_merged - before.rd_merged, ==, 0);
    g_assert_cmpint(vbr_count_events(global_qtest, pc->log, "virtio_notify",
                                     NULL) - notifies, ==, 1);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
    unlink(pc->log);
}

static void register_virtio_blk_merge_test(void)
{
    static PassCase pass = { false, 16 };
    static PassCase pass_event_idx = { true, 16 };
    static PassCase pass_full = { false, 200 };
    static const MergeCase sequential_writes = {
        fill_sequential_writes, { .wr_ops = 64, .wr_merged = 62 },
    };
    static const MergeCase interleaved = {
        fill_interleaved,
        { .rd_ops = 32, .rd_merged = 31, .wr_ops = 32, .wr_merged = 31 },
    };
    static const MergeCase reversed_reads = {
        fill_reversed_reads, { .rd_ops = 16, .rd_merged = 15 },
    };
    static const MergeCase max_iov = {
        fill_max_iov, { .wr_ops = 16 + 17, .wr_merged = 15 + 15 },
    };
    static const MergeCase max_transfer = {
        fill_max_transfer, { .wr_ops = 16 + 17, .wr_merged = 15 + 15 }, true,
    };
    static const MergeCase flush_barrier = {
        fill_flush_barrier, { .wr_ops = 4, .wr_merged = 2, .flush_ops = 1 },
    };
    static const MergeCase unmerged = {
        fill_unmerged, { .rd_ops = 8, .wr_ops = 8 },
    };
    QOSGraphTestOptions opts = {
        .before = merge_setup,
    };

    opts.arg = (void *)&sequential_writes;
    qos_add_test("merge/sequential-writes", "virtio-blk-pci", test_merge,
                 &opts);
    opts.arg = (void *)&interleaved;
    qos_add_test("merge/interleaved-read-write", "virtio-blk-pci",
                 test_merge, &opts);
    opts.arg = (void *)&reversed_reads;
    qos_add_test("merge/reversed-reads", "virtio-blk-pci", test_merge,
                 &opts);
    opts.arg = (void *)&max_iov;
    qos_add_test("merge/max-iov", "virtio-blk-pci", test_merge, &opts);
    opts.arg = (void *)&max_transfer;
    qos_add_test("merge/max-transfer", "virtio-blk-pci", test_merge, &opts);
    opts.arg = (void *)&flush_barrier;
    qos_add_test("merge/flush-barrier", "virtio-blk-pci", test_merge, &opts);

    opts.before = pass_setup;
    opts.arg = &pass;
    qos_add_test("batch/one-update-per-pass", "virtio-blk-pci",
                 test_one_update_per_pass, &opts);
    opts.arg = &pass_event_idx;
    qos_add_test("batch/one-update-per-pass-event-idx", "virtio-blk-pci",
                 test_one_update_per_pass, &opts);
    opts.arg = &pass_full;
    qos_add_test("batch/one-update-per-pass-200", "virtio-blk-pci",
                 test_one_update_per_pass, &opts);

    opts.before = merge_setup;
    opts.edge.extra_device_opts = "request-merging=off";
    opts.arg = (void *)&unmerged;
    qos_add_test("merge/request-merging-off", "virtio-blk-pci", test_merge,
                 &opts);
}

libqos_init(register_virtio_blk_merge_test);
