/*
 * QTest testcase for virtio-blk under injected I/O errors
 *
 * blkdebug fails reads, writes and flushes, single and merged, under
 * every rerror/werror policy, and a held request goes through an iothread
 * and through migration. The reference model of the disk
 * (virtio-blk-model.c) checks that every request completes exactly once
 * and that the image holds exactly what completed.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest-single.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "standard-headers/linux/virtio_blk.h"
#include "virtio-blk-model.h"

/*
 * blkdebug fails the requests of one batch with EIO or ENOSPC, and the
 * drive's error policy (rerror for reads, werror for writes and flushes)
 * decides: "report" completes them with IOERR, "ignore" with OK (nothing
 * written), "stop" stops the VM with BLOCK_IO_ERROR and holds them until
 * `cont` resubmits them, and "enospc" stops on ENOSPC and reports EIO.
 * Either way every request completes exactly once, and the disk ends up
 * holding exactly what completed. The failing requests share descriptors
 * between header or status and data, so a held request that is not given
 * back its buffers whole is parsed wrongly when it is resubmitted.
 */
#define FAULT_SECTOR        4096
#define FAULT_REQ_SECTORS   8
#define FAULT_MERGED_REQS   8
/* room around the fault; the whole disk is read back after each case */
#define FAULT_DISK_SIZE     (4 * 1024 * 1024)

static ModelDisk *disk;         /* of drive0 */

typedef struct FaultCase {
    const char *op;             /* "read", "write" or "flush" */
    int err;
    const char *policy;
    int nreqs;                  /* sequential requests in one kick */
    bool migrate;               /* migrate while the requests are held */
    bool iothread;
    /*
     * Header and status in descriptors of their own, not sharing the
     * edges of the data: a held request then migrates intact from stock
     * too, which cuts shared edges off for good (the bug 0011 fixes).
     */
    bool plain_layout;
} FaultCase;

static const char *fault_error_action(const FaultCase *fc)
{
    if (!strcmp(fc->policy, "enospc")) {
        return fc->err == ENOSPC ? "stop" : "report";
    }
    return fc->policy;
}

/* The machine without the drive, for a migration target. */
static char *fault_machine_cmdline;

static void fault_cmdline_free(void *opaque)
{
    g_free(fault_machine_cmdline);
    fault_machine_cmdline = NULL;
}

static void *fault_setup(GString *cmd_line, void *arg)
{
    const FaultCase *fc = arg;
    const char *event = !strcmp(fc->op, "flush") ? "flush_to_disk"
                        : !strcmp(fc->op, "read") ? "read_aio" : "write_aio";
    /* a held request must succeed when `cont` resubmits it */
    bool once = !strcmp(fault_error_action(fc), "stop");
    /*
     * Reads and writes fail only where they cover FAULT_SECTOR (realize
     * reads sector 0 for the geometry); a flush has no sector.
     */
    g_autofree char *sector = !strcmp(fc->op, "flush") ? g_strdup("") :
        g_strdup_printf("file.inject-error.0.sector=%d,", FAULT_SECTOR);

    if (fc->iothread) {
        g_string_append(cmd_line, " -object iothread,id=iothread0 ");
    }
    fault_machine_cmdline = g_strdup(cmd_line->str);
    g_test_queue_destroy(fault_cmdline_free, NULL);
    model_disk_create(&disk, FAULT_DISK_SIZE);
    g_string_append_printf(cmd_line,
                           " -drive if=none,id=drive0,format=raw,"
                           "auto-read-only=off,%s=%s,file.driver=blkdebug,"
                           "file.image.filename=%s,"
                           "file.inject-error.0.event=%s,"
                           "file.inject-error.0.iotype=%s,"
                           "file.inject-error.0.errno=%d,%s"
                           "file.inject-error.0.once=%s ",
                           !strcmp(fc->op, "read") ? "rerror" : "werror",
                           fc->policy, disk->path, event, fc->op, fc->err,
                           sector, once ? "on" : "off");
    return arg;
}

/* Queue the requests the fault will hit; returns the batch's type. */
static uint32_t fault_batch_add(QVirtioDevice *dev, QGuestAllocator *alloc,
                                QVirtQueue *vq, Batch *b,
                                const FaultCase *fc)
{
    uint32_t type = !strcmp(fc->op, "read") ? VIRTIO_BLK_T_IN
                    : !strcmp(fc->op, "write") ? VIRTIO_BLK_T_OUT
                    : VIRTIO_BLK_T_FLUSH;
    uint32_t nbytes = type == VIRTIO_BLK_T_FLUSH ? 0
                      : FAULT_REQ_SECTORS * SECTOR_SIZE;
    int i;

    for (i = 0; i < fc->nreqs; i++) {
        g_assert_true(batch_add(dev, alloc, vq, disk, b, type,
                                FAULT_SECTOR + i * FAULT_REQ_SECTORS,
                                nbytes, fc->plain_layout ?
                                LAYOUT_ONE_DATA_DESC : LAYOUT_SHARE_EDGES));
    }
    return type;
}

/* What a failed batch owes the guest, and what the model must forget. */
static void fault_batch_expect_failed(Batch *b, const uint8_t *before,
                                      bool report)
{
    int i;

    for (i = 0; i < b->nreqs; i++) {
        Request *r = &b->reqs[i];

        r->want_status = report ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
        if (r->type == VIRTIO_BLK_T_IN) {
            g_free(r->data);
            r->data = NULL;
        }
    }
    /* a failed write left the disk as it was */
    memcpy(disk->data + FAULT_SECTOR * SECTOR_SIZE, before,
           FAULT_MERGED_REQS * FAULT_REQ_SECTORS * SECTOR_SIZE);
}

static void fault_check_event(const FaultCase *fc)
{
    QDict *ev = qtest_qmp_eventwait_ref(global_qtest, "BLOCK_IO_ERROR");
    QDict *data = qdict_get_qdict(ev, "data");

    g_assert_cmpstr(qdict_get_str(data, "action"), ==,
                    fault_error_action(fc));
    g_assert_cmpstr(qdict_get_str(data, "operation"), ==,
                    !strcmp(fc->op, "read") ? "read" : "write");
    /* present when the policy can stop the VM (query-block's io-status) */
    if (strcmp(fc->policy, "report") && strcmp(fc->policy, "ignore")) {
        g_assert_cmpint(qdict_get_bool(data, "nospace"), ==,
                        fc->err == ENOSPC);
    }
    qobject_unref(ev);
}

/* Save the stopped VM, with the requests it holds, to a migration file. */
static char *fault_migrate_save(void)
{
    char *path = g_strdup_printf("%s/migration.%d", g_get_tmp_dir(),
                                 getpid());
    g_autofree char *uri = g_strdup_printf("file:%s", path);

    qtest_qmp_assert_success(global_qtest, "{ 'execute': 'migrate',"
                             "  'arguments': { 'uri': %s } }", uri);
    model_migrate_wait(global_qtest, "completed");
    return path;
}

/*
 * A new QEMU, the migration target, loading @path: QTEST_QEMU_BINARY_DST
 * if set (another build, e.g. stock against the fork: the migration
 * stream is the same), else the source's binary.
 */
static QTestState *fault_migrate_load(const char *path)
{
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autofree char *args = g_strdup_printf(
        "%s -drive if=none,id=drive0,format=raw,auto-read-only=off,file=%s"
        " -incoming defer", fault_machine_cmdline, disk->path);
    QTestState *dst;

    dst = qtest_init_with_env("QTEST_QEMU_BINARY_DST", args, true);
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming',"
                             "  'arguments': { 'uri': %s,"
                             "                 'exit-on-error': false } }",
                             uri);
    return dst;
}

/*
 * Move the stopped VM, with the requests it holds, to a new QEMU through
 * a migration file; the new QEMU becomes global_qtest.
 */
static QTestState *fault_migrate(void)
{
    g_autofree char *path = fault_migrate_save();
    QTestState *src = global_qtest;

    global_qtest = fault_migrate_load(path);
    model_migrate_wait(global_qtest, "completed");
    unlink(path);
    return src;
}

static void fault_run(QVirtioDevice *dev, QGuestAllocator *alloc,
                      const FaultCase *fc)
{
    const size_t span = FAULT_MERGED_REQS * FAULT_REQ_SECTORS * SECTOR_SIZE;
    g_autofree uint8_t *before = NULL;
    g_autofree Batch *b = g_new0(Batch, 1);
    const char *action = fault_error_action(fc);
    QTestState *src = NULL;
    QVirtQueue *vq;
    uint32_t type;
    int i;

    model_start_device(dev, alloc, disk, &vq, 1, false);

    /* data to read back, and a write for the flush to flush */
    for (i = 0; i < FAULT_MERGED_REQS; i++) {
        g_assert_true(batch_add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_OUT,
                                FAULT_SECTOR + i * FAULT_REQ_SECTORS,
                                FAULT_REQ_SECTORS * SECTOR_SIZE, 0));
    }
    if (strcmp(fc->op, "write")) {
        batch_run(alloc, vq, b);
    } else {
        /* the writes to fault are these, with the disk still empty */
        batch_free(alloc, vq, b);
        memset(disk->data + FAULT_SECTOR * SECTOR_SIZE, 0, span);
    }
    before = g_memdup2(disk->data + FAULT_SECTOR * SECTOR_SIZE, span);

    type = fault_batch_add(dev, alloc, vq, b, fc);
    batch_kick(vq, b);
    fault_check_event(fc);
    if (!strcmp(action, "stop")) {
        qtest_qmp_eventwait(global_qtest, "STOP");
        /* held, not completed, while the VM is stopped */
        model_check_quiet(vq);
        if (fc->migrate) {
            src = fault_migrate();
        }
        qtest_qmp_assert_success(global_qtest, "{ 'execute': 'cont' }");
    } else {
        fault_batch_expect_failed(b, before, !strcmp(action, "report"));
    }
    batch_wait(vq, b);
    /* no second completion of anything */
    model_check_quiet(vq);

    if (src) {
        /* the guest lives on in the target, now gone */
        qtest_quit(global_qtest);
        global_qtest = src;
        batch_free(alloc, vq, b);
        qvirtqueue_cleanup(dev->bus, vq, alloc);
        model_check_image(disk);
        return;
    }
    batch_free(alloc, vq, b);
    /* reads would fault again unless the error happened just once */
    if (type != VIRTIO_BLK_T_IN || !strcmp(action, "stop")) {
        model_read_back(dev, alloc, disk, vq);
    }
    model_check_image(disk);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

static void test_fault_pci(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;

    fault_run(&pdev->vdev, alloc, data);
}

/*
 * Point the held request's first out buffer at @addr in the saved element
 * (VirtQueueElementOld: three u32, then in_addr[1024], out_addr[1024]),
 * as a source that accepted such a buffer would have saved it.
 */
static void migration_file_move_buffer(const char *path, const Request *r,
                                       uint64_t addr)
{
    const size_t addrs = 1024 * sizeof(uint64_t);
    g_autofree char *buf = NULL;
    g_autoptr(GError) err = NULL;
    size_t len, i;
    int found = 0;

    g_assert_true(g_file_get_contents(path, &buf, &len, &err));
    for (i = 0; i + addrs + 8 <= len; i++) {
        if (ldq_he_p(buf + i) == r->segs[r->nsegs - 1].addr &&
            ldq_he_p(buf + i + addrs) == r->segs[0].addr) {
            stq_he_p(buf + i + addrs, addr);
            found++;
        }
    }
    g_assert_cmpint(found, ==, 1);
    g_assert_true(g_file_set_contents(path, buf, len, &err));
}

/*
 * A migration source that accepts buffers in device registers (stock QEMU
 * until the fix) can hand over a held request whose buffer is MMIO. The
 * target must fail the migration, not exit; the source, still holding the
 * request, continues and completes it.
 */
static void test_fault_migrate_buffer_in_registers(void *obj, void *data,
                                                   QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    g_autofree Batch *b = g_new0(Batch, 1);
    g_autofree char *path = NULL;
    QTestState *dst;
    QVirtQueue *vq;

    model_start_device(dev, alloc, disk, &vq, 1, false);
    g_assert_true(batch_add(dev, alloc, vq, disk, b, VIRTIO_BLK_T_OUT,
                            FAULT_SECTOR, SECTOR_SIZE, 0));
    batch_kick(vq, b);
    fault_check_event(data);
    qtest_qmp_eventwait(global_qtest, "STOP");

    path = fault_migrate_save();
    migration_file_move_buffer(path, &b->reqs[0],
                               pdev->bar.addr + pdev->common_cfg_offset);
    dst = fault_migrate_load(path);
    model_migrate_wait(dst, "failed");
    qtest_qmp_assert_success(dst, "{ 'execute': 'query-status' }");
    qtest_quit(dst);
    unlink(path);

    qtest_qmp_assert_success(global_qtest, "{ 'execute': 'cont' }");
    batch_wait(vq, b);
    model_check_quiet(vq);
    batch_free(alloc, vq, b);
    model_read_back(dev, alloc, disk, vq);
    model_check_image(disk);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

/*
 * Every op x errno x policy, merged and single where that means anything;
 * on virtio-blk-pci, as the virtio-blk node holds as many tests as qgraph
 * can walk.
 */
static void register_fault_tests(void)
{
    static const char *const ops[] = { "read", "write", "flush" };
    static const char *const policies[] = {
        "stop", "report", "ignore", "enospc",
    };
    static const int errs[] = { EIO, ENOSPC };
    /* qgraph keeps the arguments of its tests, and never frees them */
    static FaultCase cases[48];
    QOSGraphTestOptions opts = {
        .before = fault_setup,
    };
    FaultCase *fc = cases;
    char *name;
    int o, p, e, n;

    for (o = 0; o < ARRAY_SIZE(ops); o++) {
        for (p = 0; p < ARRAY_SIZE(policies); p++) {
            /* rerror has no enospc policy */
            if (!strcmp(ops[o], "read") && !strcmp(policies[p], "enospc")) {
                continue;
            }
            for (e = 0; e < ARRAY_SIZE(errs); e++) {
                for (n = 1; n <= FAULT_MERGED_REQS;
                     n += FAULT_MERGED_REQS - 1) {
                    if (!strcmp(ops[o], "flush") && n > 1) {
                        break;
                    }
                    g_assert(fc < cases + ARRAY_SIZE(cases) - 4);
                    *fc = (FaultCase) { ops[o], errs[e], policies[p], n };
                    name = g_strdup_printf("fault/%s-%s-%s%s", ops[o],
                                           errs[e] == EIO ? "eio" : "enospc",
                                           policies[p],
                                           n > 1 ? "-merged" : "");
                    opts.arg = fc;
                    qos_add_test(name, "virtio-blk-pci", test_fault_pci,
                                 &opts);
                    g_free(name);
                    fc++;
                }
            }
        }
    }

    /* a held merged write, with an iothread, and across migration */
    opts.edge.extra_device_opts = "iothread=iothread0";
    *fc = (FaultCase) { "write", EIO, "stop", FAULT_MERGED_REQS,
                        .iothread = true };
    opts.arg = fc;
    qos_add_test("fault/write-eio-stop-merged-iothread", "virtio-blk-pci",
                 test_fault_pci, &opts);
    opts.edge.extra_device_opts = NULL;
    fc++;
    *fc = (FaultCase) { "write", EIO, "stop", FAULT_MERGED_REQS, true };
    opts.arg = fc;
    qos_add_test("fault/write-eio-stop-merged-migrate", "virtio-blk-pci",
                 test_fault_pci, &opts);
    fc++;
    *fc = (FaultCase) { "write", EIO, "stop", FAULT_MERGED_REQS, true,
                        .plain_layout = true };
    opts.arg = fc;
    qos_add_test("fault/write-eio-stop-merged-migrate-plain",
                 "virtio-blk-pci", test_fault_pci, &opts);
    fc++;
    *fc = (FaultCase) { "write", EIO, "stop", 1, true };
    opts.arg = fc;
    qos_add_test("fault/migrate-buffer-in-registers", "virtio-blk-pci",
                 test_fault_migrate_buffer_in_registers, &opts);
}

libqos_init(register_fault_tests);
