/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The request path of a BlockBackend
 *
 * Reads, writes, write-zeroes, discards and flushes, as coroutines
 * (blk_co_*) and as AIO requests (blk_aio_*) that run those coroutines.
 * Every request goes the same way:
 *
 *   blk_aio_preadv() -> blk_aio_prwv()              AIOCB, coroutine
 *     -> blk_aio_read_entry() -> blk_co_do_rw()     drain, range, throttle
 *       -> bdrv_co_preadv_part()                    block/io.c
 *     -> blk_aio_complete()                         callback, or deferred
 *
 * blk_co_preadv() and the others enter at blk_co_do_rw() directly.  Each
 * request counts in @blk's in_flight from submission to callback, which
 * is what drain waits for.
 */

#include "qemu/osdep.h"
#include "block/block-backend-internal.h"
#include "block/aiocb-batch.h"
#include "block/throttle-groups.h"
#include "trace.h"

/* --- checks every request makes ----------------------------------------- */

void coroutine_fn blk_queue_while_drained(BlockBackend *blk)
{
    /*
     * The request stops counting as in flight, so that the drain can end;
     * blk_root_drained_end() counts it again before it restarts it.  The
     * lock makes the drained section's end wait until the request is on
     * the queue.
     */
    qemu_mutex_lock(&blk->queued_requests_lock);
    blk_in_flight_dec(blk);
    qemu_co_queue_wait(&blk->queued_requests, &blk->queued_requests_lock);
    qemu_mutex_unlock(&blk->queued_requests_lock);
}

/* --- coroutine requests ------------------------------------------------- */

/*
 * A read or a write of @bytes at @offset from @qiov at @qiov_offset (no
 * @qiov for write-zeroes).  Called between exactly one pair of
 * blk_inc/dec_in_flight().  Inlined, so that each caller gets the code of
 * its direction only.
 */
static inline int coroutine_fn QEMU_ALWAYS_INLINE
blk_co_do_rw(BlockBackend *blk, bool is_write, int64_t offset, int64_t bytes,
             QEMUIOVector *qiov, size_t qiov_offset, BdrvRequestFlags flags)
{
    ThrottleGroupMember *tgm = &blk->public.throttle_group_member;
    BlockDriverState *bs;
    bool throttled;
    int ret;

    blk_wait_while_drained(blk, flags);
    GRAPH_RDLOCK_GUARD();

    /* Only after the wait: the graph may have changed during it */
    bs = blk_root_bs(blk);
    if (is_write) {
        trace_blk_co_pwritev(blk, bs, offset, bytes, flags);
    } else {
        trace_blk_co_preadv(blk, bs, offset, bytes, flags);
    }

    ret = blk_check_byte_request(blk, offset, bytes);
    if (unlikely(ret < 0)) {
        return ret;
    }

    /*
     * A request that waits in its throttle group counts as in flight on
     * the node, as it will once bdrv_co_p*v_part() has it.  Unthrottled,
     * nothing runs between here and there: no count of its own.
     */
    throttled = tgm->throttle_state;
    if (throttled) {
        bdrv_inc_in_flight(bs);
        throttle_group_co_io_limits_intercept(tgm, bytes,
                                              is_write ? THROTTLE_WRITE
                                                       : THROTTLE_READ);
    }
    if (!is_write) {
        ret = bdrv_co_preadv_part(blk->root, offset, bytes, qiov, qiov_offset,
                                  flags);
    } else {
        /* A disk without a write cache: every write is written through */
        if (!blk->enable_write_cache) {
            flags |= BDRV_REQ_FUA;
        }
        ret = bdrv_co_pwritev_part(blk->root, offset, bytes, qiov,
                                   qiov_offset, flags);
    }
    if (throttled) {
        bdrv_dec_in_flight(bs);
    }
    return ret;
}

/* Called between exactly one pair of blk_inc/dec_in_flight() */
static int coroutine_fn
blk_co_do_pdiscard(BlockBackend *blk, int64_t offset, int64_t bytes,
                   BdrvRequestFlags flags)
{
    int ret;

    blk_wait_while_drained(blk, flags);
    GRAPH_RDLOCK_GUARD();

    ret = blk_check_byte_request(blk, offset, bytes);
    return ret < 0 ? ret : bdrv_co_pdiscard(blk->root, offset, bytes);
}

/* Called between exactly one pair of blk_inc/dec_in_flight() */
static int coroutine_fn blk_co_do_flush(BlockBackend *blk)
{
    blk_wait_while_drained(blk, 0);
    GRAPH_RDLOCK_GUARD();

    if (!blk_co_is_available(blk)) {
        return -ENOMEDIUM;
    }
    return bdrv_co_flush(blk_bs(blk));
}

/* blk_co_do_rw() counted in @blk's in_flight, for the blk_co_* callers */
static inline int coroutine_fn QEMU_ALWAYS_INLINE
blk_co_rw(BlockBackend *blk, bool is_write, int64_t offset, int64_t bytes,
          QEMUIOVector *qiov, size_t qiov_offset, BdrvRequestFlags flags)
{
    int ret;

    blk_in_flight_inc(blk);
    ret = blk_co_do_rw(blk, is_write, offset, bytes, qiov, qiov_offset,
                       flags);
    blk_in_flight_dec(blk);
    return ret;
}

int coroutine_fn blk_co_preadv_part(BlockBackend *blk, int64_t offset,
                                    int64_t bytes, QEMUIOVector *qiov,
                                    size_t qiov_offset, BdrvRequestFlags flags)
{
    IO_OR_GS_CODE();
    return blk_co_rw(blk, false, offset, bytes, qiov, qiov_offset, flags);
}

int coroutine_fn blk_co_preadv(BlockBackend *blk, int64_t offset,
                               int64_t bytes, QEMUIOVector *qiov,
                               BdrvRequestFlags flags)
{
    IO_OR_GS_CODE();
    return blk_co_preadv_part(blk, offset, bytes, qiov, 0, flags);
}

int coroutine_fn blk_co_pwritev_part(BlockBackend *blk, int64_t offset,
                                     int64_t bytes,
                                     QEMUIOVector *qiov, size_t qiov_offset,
                                     BdrvRequestFlags flags)
{
    IO_OR_GS_CODE();
    return blk_co_rw(blk, true, offset, bytes, qiov, qiov_offset, flags);
}

int coroutine_fn blk_co_pwritev(BlockBackend *blk, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags)
{
    IO_OR_GS_CODE();
    return blk_co_pwritev_part(blk, offset, bytes, qiov, 0, flags);
}

int coroutine_fn blk_co_pdiscard(BlockBackend *blk, int64_t offset,
                                 int64_t bytes, BdrvRequestFlags flags)
{
    int ret;
    IO_OR_GS_CODE();

    blk_in_flight_inc(blk);
    ret = blk_co_do_pdiscard(blk, offset, bytes, flags);
    blk_in_flight_dec(blk);
    return ret;
}

int coroutine_fn blk_co_flush(BlockBackend *blk)
{
    int ret;
    IO_OR_GS_CODE();

    blk_in_flight_inc(blk);
    ret = blk_co_do_flush(blk);
    blk_in_flight_dec(blk);
    return ret;
}

/* --- AIO requests ------------------------------------------------------- */

/* Small enough for the per-thread AIOCB cache: no malloc per request */
const AIOCBInfo blk_aio_em_aiocb_info = {
    .aiocb_size         = sizeof(BlkAioEmAIOCB),
    .cached             = true,
};
QEMU_BUILD_BUG_ON(sizeof(BlkAioEmAIOCB) > AIOCB_CACHE_OBJECT_SIZE);

/*
 * The end of a request's coroutine, and of the deferred completion of one
 * that finished before blk_aio_prwv() returned: the callback must not run
 * before its caller has the AIOCB.
 */
void blk_aio_complete(BlkAioEmAIOCB *acb)
{
    if (!acb->has_returned) {
        return;                 /* blk_aio_prwv() defers it */
    }
    acb->common.cb(acb->common.opaque, acb->rwco.ret);
    blk_in_flight_dec(acb->rwco.blk);
    qemu_aio_unref_cached(&acb->common);
}

void blk_aio_complete_bh(void *opaque)
{
    BlkAioEmAIOCB *acb = opaque;

    assert(acb->has_returned);
    blk_aio_complete(acb);
}

/* blk_aio_prwv(), inline in the read and write functions below */
static inline BlockAIOCB * QEMU_ALWAYS_INLINE
blk_aio_start(BlockBackend *blk, int64_t offset, int64_t bytes, void *iobuf,
              CoroutineEntry co_entry, BdrvRequestFlags flags,
              BlockCompletionFunc *cb, void *opaque)
{
    AioContext *ctx = qemu_get_current_aio_context();
    BlkAioEmAIOCB *acb;
    Coroutine *co;

    blk_in_flight_inc(blk);
    acb = qemu_aio_get_cached(&blk_aio_em_aiocb_info, blk_root_bs(blk), cb,
                              opaque);
    acb->rwco = (BlkRwCo) {
        .blk    = blk,
        .offset = offset,
        .iobuf  = iobuf,
        .flags  = flags,
        .ret    = NOT_DONE,
    };
    acb->bytes = bytes;
    acb->has_returned = false;

    co = qemu_coroutine_create(co_entry, acb);
    /* aio_co_enter(), without checking again that @ctx is the current one */
    if (unlikely(qemu_in_coroutine())) {
        aio_co_enter(ctx, co);          /* runs once the caller yields */
    } else {
        qemu_aio_coroutine_enter(ctx, co);
    }

    acb->has_returned = true;
    if (acb->rwco.ret != NOT_DONE) {
        aiocb_defer_completion(ctx, blk_aio_complete_bh, acb);
    }
    return &acb->common;
}

BlockAIOCB *blk_aio_prwv(BlockBackend *blk, int64_t offset, int64_t bytes,
                         void *iobuf, CoroutineEntry co_entry,
                         BdrvRequestFlags flags,
                         BlockCompletionFunc *cb, void *opaque)
{
    return blk_aio_start(blk, offset, bytes, iobuf, co_entry, flags, cb,
                         opaque);
}

/* The coroutine of a read or write AIO request (write-zeroes: no qiov) */
static inline void coroutine_fn QEMU_ALWAYS_INLINE
blk_aio_rw(BlkAioEmAIOCB *acb, bool is_write)
{
    BlkRwCo *rwco = &acb->rwco;
    QEMUIOVector *qiov = rwco->iobuf;

    assert(is_write ? !qiov || qiov->size == acb->bytes
                    : qiov->size == acb->bytes);
    rwco->ret = blk_co_do_rw(rwco->blk, is_write, rwco->offset, acb->bytes,
                             qiov, 0, rwco->flags);
    blk_aio_complete(acb);
}

static void coroutine_fn blk_aio_read_entry(void *opaque)
{
    blk_aio_rw(opaque, false);
}

static void coroutine_fn blk_aio_write_entry(void *opaque)
{
    blk_aio_rw(opaque, true);
}

static void coroutine_fn blk_aio_pdiscard_entry(void *opaque)
{
    BlkAioEmAIOCB *acb = opaque;
    BlkRwCo *rwco = &acb->rwco;

    rwco->ret = blk_co_do_pdiscard(rwco->blk, rwco->offset, acb->bytes, 0);
    blk_aio_complete(acb);
}

static void coroutine_fn blk_aio_flush_entry(void *opaque)
{
    BlkAioEmAIOCB *acb = opaque;

    acb->rwco.ret = blk_co_do_flush(acb->rwco.blk);
    blk_aio_complete(acb);
}

BlockAIOCB *blk_aio_preadv(BlockBackend *blk, int64_t offset,
                           QEMUIOVector *qiov, BdrvRequestFlags flags,
                           BlockCompletionFunc *cb, void *opaque)
{
    IO_CODE();
    assert((uint64_t)qiov->size <= INT64_MAX);
    return blk_aio_start(blk, offset, qiov->size, qiov, blk_aio_read_entry,
                         flags, cb, opaque);
}

BlockAIOCB *blk_aio_pwritev(BlockBackend *blk, int64_t offset,
                            QEMUIOVector *qiov, BdrvRequestFlags flags,
                            BlockCompletionFunc *cb, void *opaque)
{
    IO_CODE();
    assert((uint64_t)qiov->size <= INT64_MAX);
    return blk_aio_start(blk, offset, qiov->size, qiov, blk_aio_write_entry,
                         flags, cb, opaque);
}

BlockAIOCB *blk_aio_pwrite_zeroes(BlockBackend *blk, int64_t offset,
                                  int64_t bytes, BdrvRequestFlags flags,
                                  BlockCompletionFunc *cb, void *opaque)
{
    IO_CODE();
    return blk_aio_prwv(blk, offset, bytes, NULL, blk_aio_write_entry,
                        flags | BDRV_REQ_ZERO_WRITE, cb, opaque);
}

BlockAIOCB *blk_aio_pdiscard(BlockBackend *blk, int64_t offset, int64_t bytes,
                             BlockCompletionFunc *cb, void *opaque)
{
    IO_CODE();
    return blk_aio_prwv(blk, offset, bytes, NULL, blk_aio_pdiscard_entry, 0,
                        cb, opaque);
}

BlockAIOCB *blk_aio_flush(BlockBackend *blk,
                          BlockCompletionFunc *cb, void *opaque)
{
    IO_CODE();
    return blk_aio_prwv(blk, 0, 0, NULL, blk_aio_flush_entry, 0, cb, opaque);
}
