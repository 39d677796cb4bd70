/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The contracts of the blk_aio_*() path: AIOCBs from a per-thread cache,
 * completions of requests that finished at once run in batches by one
 * BH per AioContext (util/aiocb-batch.c).
 */

#include "qemu/osdep.h"
#include <malloc.h>
#include "block/block.h"
#include "system/block-backend.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "block/aio-wait.h"
#include "block/aiocb-batch.h"
#include "qemu/throttle.h"
#include "iothread.h"

#define DISK_SIZE (64 * 1024 * 1024)
#define REQ_SIZE 4096
#define MAX_REQS 64

typedef struct Completion {
    int ret;
    int calls;
    unsigned seq;           /* when it completed, from 1 on */
} Completion;

typedef struct Run {
    BlockBackend *blk;
    QEMUIOVector qiov;
    uint8_t buf[REQ_SIZE];
    Completion done[MAX_REQS];
    unsigned completed;
    /* Requests a completion submits again, for the resubmission tests */
    unsigned resubmit;
} Run;

static Run run;

/* A BlockBackend on null-co; @latency_ns > 0 makes every request yield */
static BlockBackend *open_null(int64_t latency_ns)
{
    QDict *opts = qdict_new();
    BlockBackend *blk;

    qdict_put_str(opts, "driver", "null-co");
    qdict_put_int(opts, "size", DISK_SIZE);
    qdict_put_bool(opts, "read-zeroes", true);
    qdict_put_int(opts, "latency-ns", latency_ns);
    blk = blk_new_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort);
    g_assert(blk);
    return blk;
}

static void setup(int64_t latency_ns)
{
    memset(&run, 0, sizeof(run));
    run.blk = open_null(latency_ns);
    qemu_iovec_init_buf(&run.qiov, run.buf, sizeof(run.buf));
}

static void teardown(void)
{
    blk_unref(run.blk);
    run.blk = NULL;
}

static void read_cb(void *opaque, int ret);

static BlockAIOCB *submit_read(int64_t offset, Completion *c)
{
    return blk_aio_preadv(run.blk, offset, &run.qiov, 0, read_cb, c);
}

static void read_cb(void *opaque, int ret)
{
    Completion *c = opaque;

    c->ret = ret;
    c->calls++;
    /* The main thread watches it while an iothread completes requests */
    c->seq = qatomic_inc_fetch(&run.completed);
    if (run.resubmit) {
        run.resubmit--;
        submit_read(0, c);
    }
}

static void wait_for(unsigned completed)
{
    while (run.completed < completed) {
        aio_poll(qemu_get_aio_context(), true);
    }
}

/* A request that completes at once calls back only after blk_aio_* returns */
static void test_no_synchronous_callback(void)
{
    setup(0);
    g_assert(submit_read(0, &run.done[0]));
    g_assert_cmpint(run.done[0].calls, ==, 0);
    wait_for(1);
    g_assert_cmpint(run.done[0].calls, ==, 1);
    g_assert_cmpint(run.done[0].ret, ==, 0);
    teardown();
}

/* Completions that finished at once run in submission order, in one pass */
static void test_completion_order(void)
{
    unsigned i;

    setup(0);
    for (i = 0; i < MAX_REQS; i++) {
        submit_read((int64_t)i * REQ_SIZE, &run.done[i]);
    }
    g_assert_cmpint(run.completed, ==, 0);
    aio_poll(qemu_get_aio_context(), false);
    g_assert_cmpint(run.completed, ==, MAX_REQS);
    for (i = 0; i < MAX_REQS; i++) {
        g_assert_cmpint(run.done[i].calls, ==, 1);
        g_assert_cmpint(run.done[i].seq, ==, i + 1);
    }
    teardown();
}

/*
 * A callback that submits again does not keep the event loop in one pass:
 * what it queues runs in the next one.
 */
static void test_resubmission_waits_for_next_pass(void)
{
    setup(0);
    run.resubmit = 10;
    submit_read(0, &run.done[0]);
    aio_poll(qemu_get_aio_context(), false);
    g_assert_cmpint(run.completed, ==, 1);
    aio_poll(qemu_get_aio_context(), false);
    g_assert_cmpint(run.completed, ==, 2);
    wait_for(11);
    g_assert_cmpint(run.done[0].calls, ==, 11);
    g_assert_cmpint(run.resubmit, ==, 0);
    teardown();
}

/*
 * A callback that waits in a nested event loop sees the completions
 * queued behind its own run there, as with a oneshot BH each: a device
 * model that drains another drive from a completion (blk_drain(), which
 * would wait for ever otherwise).  Bounded here, to fail, not hang.
 */
static void nested_wait_cb(void *opaque, int ret)
{
    AioContext *ctx = qemu_get_current_aio_context();
    int i;

    read_cb(opaque, ret);
    for (i = 0; i < 10 && run.done[1].calls == 0; i++) {
        aio_poll(ctx, false);
    }
    g_assert_cmpint(run.done[1].calls, ==, 1);
}

static void test_nested_wait_in_callback(void)
{
    BlockBackend *other;

    setup(0);
    other = open_null(0);
    blk_aio_preadv(run.blk, 0, &run.qiov, 0, nested_wait_cb, &run.done[0]);
    blk_aio_preadv(other, 0, &run.qiov, 0, read_cb, &run.done[1]);
    wait_for(2);
    g_assert_cmpint(run.done[0].seq, ==, 1);
    g_assert_cmpint(run.done[1].seq, ==, 2);
    /* Nothing ran twice, and the BH left scheduled finds nothing to do */
    aio_poll(qemu_get_aio_context(), false);
    g_assert_cmpint(run.completed, ==, 2);
    blk_unref(other);
    teardown();
}

/* Errors reach the callback with their value */
static void test_errors(void)
{
    BlockBackend *empty = blk_new(qemu_get_aio_context(), BLK_PERM_ALL,
                                  BLK_PERM_ALL);
    Run *r = &run;

    setup(0);
    /* Past the end of the disk */
    submit_read(DISK_SIZE, &r->done[0]);
    /* Negative offset */
    submit_read(-REQ_SIZE, &r->done[1]);
    /* No medium */
    blk_aio_preadv(empty, 0, &r->qiov, 0, read_cb, &r->done[2]);
    /* A good one after them still succeeds */
    submit_read(DISK_SIZE - REQ_SIZE, &r->done[3]);
    wait_for(4);
    g_assert_cmpint(r->done[0].ret, ==, -EIO);
    g_assert_cmpint(r->done[1].ret, ==, -EIO);
    g_assert_cmpint(r->done[2].ret, ==, -ENOMEDIUM);
    g_assert_cmpint(r->done[3].ret, ==, 0);
    blk_unref(empty);
    teardown();
}

/* Drain returns only when every request, queued completions too, ran */
static void test_drain_in_flight(void)
{
    unsigned i;

    for (i = 0; i < 2; i++) {
        unsigned j;

        /* Once completing at once, once yielding in the driver */
        setup(i ? 1000 * 1000 : 0);
        for (j = 0; j < MAX_REQS; j++) {
            submit_read((int64_t)j * REQ_SIZE, &run.done[j]);
        }
        blk_drain(run.blk);
        g_assert_cmpint(run.completed, ==, MAX_REQS);
        for (j = 0; j < MAX_REQS; j++) {
            g_assert_cmpint(run.done[j].calls, ==, 1);
            g_assert_cmpint(run.done[j].ret, ==, 0);
        }
        teardown();
    }
}

/* Cancelling an in-flight request waits for it; its callback runs once */
static void test_cancel_in_flight(void)
{
    BlockAIOCB *acb;

    setup(1000 * 1000);
    acb = submit_read(0, &run.done[0]);
    submit_read(REQ_SIZE, &run.done[1]);
    g_assert_cmpint(run.completed, ==, 0);
    blk_aio_cancel(acb);
    g_assert_cmpint(run.done[0].calls, ==, 1);
    blk_aio_cancel_async(submit_read(2 * REQ_SIZE, &run.done[2]));
    wait_for(3);
    blk_drain(run.blk);
    g_assert_cmpint(run.done[0].calls, ==, 1);
    g_assert_cmpint(run.done[1].calls, ==, 1);
    g_assert_cmpint(run.done[2].calls, ==, 1);
    teardown();
}

/*
 * A request submitted while its node is drained waits in the queue of the
 * BlockBackend; cancelling it asynchronously does not lose it: it runs,
 * and calls back once, when the drained section ends.
 */
static void test_cancel_queued(void)
{
    BlockDriverState *bs;

    setup(0);
    bs = blk_bs(run.blk);
    bdrv_drained_begin(bs);
    blk_aio_cancel_async(submit_read(0, &run.done[0]));
    submit_read(REQ_SIZE, &run.done[1]);
    aio_poll(qemu_get_aio_context(), false);
    g_assert_cmpint(run.completed, ==, 0);
    bdrv_drained_end(bs);
    wait_for(2);
    g_assert_cmpint(run.done[0].calls, ==, 1);
    g_assert_cmpint(run.done[0].ret, ==, 0);
    g_assert_cmpint(run.done[1].seq, ==, 2);
    teardown();
}

/* Throttled requests complete, in the order they were submitted */
static void test_throttled_in_order(void)
{
    const unsigned n = 20;
    ThrottleConfig cfg;
    unsigned i;

    setup(0);
    throttle_config_init(&cfg);
    /* A few at once, then one every 10 ms */
    cfg.buckets[THROTTLE_OPS_TOTAL].avg = 100;
    blk_io_limits_enable(run.blk, "test-blk-aio");
    blk_set_io_limits(run.blk, &cfg);
    for (i = 0; i < n; i++) {
        submit_read((int64_t)i * REQ_SIZE, &run.done[i]);
    }
    aio_poll(qemu_get_aio_context(), false);
    g_assert_cmpint(run.completed, <, n);
    wait_for(n);
    for (i = 0; i < n; i++) {
        g_assert_cmpint(run.done[i].ret, ==, 0);
        g_assert_cmpint(run.done[i].seq, ==, i + 1);
    }
    blk_io_limits_disable(run.blk);
    teardown();
}

static void submit_batch_bh(void *opaque)
{
    unsigned i, *first = opaque;

    for (i = *first; i < *first + 16; i++) {
        submit_read((int64_t)i * REQ_SIZE, &run.done[i]);
    }
}

/*
 * Requests in flight when the BlockBackend moves to an iothread complete
 * first; requests submitted in the iothread complete there, through its
 * own completion ring; then back, and the iothread ends (its ring goes
 * with it, empty).
 */
static void test_aio_context_move(void)
{
    IOThread *iothread = iothread_new();
    AioContext *ctx = iothread_get_aio_context(iothread);
    unsigned i, j, first;

    for (i = 0; i < 2; i++) {
        /* With requests completing at once, then yielding in the driver */
        setup(i ? 1000 * 1000 : 0);
        first = 0;
        submit_batch_bh(&first);
        blk_set_aio_context(run.blk, ctx, &error_abort);
        g_assert_cmpint(run.completed, ==, 16);

        first = 16;
        aio_wait_bh_oneshot(ctx, submit_batch_bh, &first);
        while (qatomic_read(&run.completed) < 32) {
            g_usleep(1000);
        }
        blk_set_aio_context(run.blk, qemu_get_aio_context(), &error_abort);

        first = 32;
        submit_batch_bh(&first);
        wait_for(48);
        for (j = 0; j < 48; j++) {
            g_assert_cmpint(run.done[j].calls, ==, 1);
            g_assert_cmpint(run.done[j].ret, ==, 0);
        }
        teardown();
    }
    iothread_join(iothread);
}

/*
 * No BH runs what completes at once in an iothread's batch, not even in a
 * nested pass: the end of the outermost batch runs it, in order.
 */
static void batch_in_iothread_bh(void *opaque)
{
    AioContext *ctx = qemu_get_current_aio_context();
    unsigned i;

    aiocb_batch_begin();
    aiocb_batch_begin();
    for (i = 0; i < 16; i++) {
        submit_read((int64_t)i * REQ_SIZE, &run.done[i]);
    }
    aio_poll(ctx, false);
    aiocb_batch_end();
    g_assert_cmpint(qatomic_read(&run.completed), ==, 0);
    aiocb_batch_end();
    g_assert_cmpint(qatomic_read(&run.completed), ==, 16);
    for (i = 0; i < 16; i++) {
        g_assert_cmpint(run.done[i].calls, ==, 1);
        g_assert_cmpint(run.done[i].seq, ==, i + 1);
    }
    /*
     * The run of several completions notified the context: its BH, left
     * scheduled, is what the next pass finds, not a bare notice that
     * adaptive polling would take for an event (see aiocb_ring_run())
     */
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(qatomic_read(&run.completed), ==, 16);
}

/*
 * aiocb_batch_begin()/_end() in an iothread, then in the main context,
 * which vCPU threads share: there the BH still runs what completed.
 */
static void test_batch(void)
{
    IOThread *iothread = iothread_new();
    AioContext *ctx = iothread_get_aio_context(iothread);
    unsigned first = 16;

    setup(0);
    blk_set_aio_context(run.blk, ctx, &error_abort);
    aio_wait_bh_oneshot(ctx, batch_in_iothread_bh, NULL);
    blk_set_aio_context(run.blk, qemu_get_aio_context(), &error_abort);

    aiocb_batch_begin();
    submit_batch_bh(&first);
    aiocb_batch_end();
    g_assert_cmpint(run.completed, ==, 16);
    aio_poll(qemu_get_aio_context(), false);
    g_assert_cmpint(run.completed, ==, 32);
    teardown();
    iothread_join(iothread);
}

/* The AIOCB cache gives the same storage back, and does not grow */
static void test_aiocb_cache_reuse(void)
{
    static const AIOCBInfo info = {
        .aiocb_size = sizeof(BlockAIOCB),
        .cached = true,
    };
    BlockAIOCB *a = qemu_aio_get(&info, NULL, NULL, NULL);
    BlockAIOCB *b;

    qemu_aio_unref(a);
    b = qemu_aio_get(&info, NULL, NULL, NULL);
    g_assert(a == b);
    g_assert_cmpint(b->refcnt, ==, 1);
    qemu_aio_unref(b);
}

static size_t heap_in_use(void)
{
    return mallinfo2().uordblks;
}

/* One million requests leave the heap where a thousand left it */
static void test_steady_state(void)
{
    const unsigned warmup = 1000, total = 1000 * 1000;
    unsigned i, depth = 32;
    size_t before;

    setup(0);
    /* Keep @depth requests going, each completion submitting the next */
    run.resubmit = warmup;
    for (i = 0; i < depth; i++) {
        submit_read(0, &run.done[i]);
    }
    wait_for(warmup + depth);
    before = heap_in_use();
    run.resubmit = total;
    for (i = 0; i < depth; i++) {
        submit_read(0, &run.done[i]);
    }
    wait_for(warmup + depth + total + depth);
    g_assert_cmpuint(run.completed, ==, warmup + depth + total + depth);
    g_assert_cmpuint(heap_in_use(), <=, before);
    teardown();
}

int main(int argc, char **argv)
{
    bdrv_init();
    qemu_init_main_loop(&error_abort);
    module_call_init(MODULE_INIT_QOM);
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/blk-aio/no-synchronous-callback",
                    test_no_synchronous_callback);
    g_test_add_func("/blk-aio/completion-order", test_completion_order);
    g_test_add_func("/blk-aio/resubmission-waits-for-next-pass",
                    test_resubmission_waits_for_next_pass);
    g_test_add_func("/blk-aio/nested-wait-in-callback",
                    test_nested_wait_in_callback);
    g_test_add_func("/blk-aio/errors", test_errors);
    g_test_add_func("/blk-aio/drain-in-flight", test_drain_in_flight);
    g_test_add_func("/blk-aio/cancel-in-flight", test_cancel_in_flight);
    g_test_add_func("/blk-aio/cancel-queued", test_cancel_queued);
    g_test_add_func("/blk-aio/throttled-in-order", test_throttled_in_order);
    g_test_add_func("/blk-aio/aio-context-move", test_aio_context_move);
    g_test_add_func("/blk-aio/batch", test_batch);
    g_test_add_func("/blk-aio/aiocb-cache-reuse", test_aiocb_cache_reuse);
    g_test_add_func("/blk-aio/steady-state", test_steady_state);

    return g_test_run();
}
