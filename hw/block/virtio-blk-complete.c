/*
 * Virtio Block Device: completing requests
 *
 * A request completes when the block layer calls back, in the AioContext
 * of its virtqueue, or at once when its parsing gave a status. Completing
 * writes the status byte and gives the buffers back through the used
 * ring; the requests of a queue that complete in one pass of its event
 * loop (those of a merged I/O, the I/Os a backend completes together)
 * are made visible to the guest with one used index update and one
 * notification.
 *
 * A failed I/O goes through the drive's rerror/werror policy: "report"
 * completes it with VIRTIO_BLK_S_IOERR, "ignore" as if it succeeded, and
 * "stop" (and "enospc" on ENOSPC) holds it on VirtIOBlock.rq and stops the
 * VM; virtio_blk_restart_bh() starts it again when the VM runs again, here
 * or on a migration target.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/iov.h"
#include "qemu/lockable.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "block/accounting.h"
#include "system/block-backend.h"
#include "hw/virtio/virtio-access.h"
#include "virtio-blk-internal.h"
#include "trace.h"

/* What virtio_blk_apply_error_policy() returns for a request it holds */
#define VIRTIO_BLK_REQ_HELD     (-1)

void virtio_blk_init_used_batches(VirtIOBlock *s)
{
    unsigned int i;

    s->used_batches = g_new0(VirtIOBlockUsedBatch, s->conf.num_queues);
    for (i = 0; i < s->conf.num_queues; i++) {
        s->used_batches[i].dev = s;
        s->used_batches[i].vq = virtio_get_queue(virtio_blk_vdev(s), i);
    }
}

/* Free what virtio_blk_init_used_batches() and the queues' passes made */
void virtio_blk_free_used_batches(VirtIOBlock *s)
{
    unsigned int i;

    for (i = 0; i < s->conf.num_queues; i++) {
        if (s->used_batches[i].publish_bh) {
            qemu_bh_delete(s->used_batches[i].publish_bh);
        }
    }
    g_free(s->used_batches);
    s->used_batches = NULL;
}

static VirtIOBlockUsedBatch *virtio_blk_used_batch(VirtIOBlockReq *req)
{
    return &req->dev->used_batches[virtio_get_queue_index(req->vq)];
}

/*
 * Write @req's status and put it in the used ring, past the entries its
 * queue filled before it; virtio_blk_publish_used() makes them visible.
 * Called within rcu_read_lock(), as virtqueue_fill() wants.
 */
static inline void QEMU_ALWAYS_INLINE
virtio_blk_req_fill(VirtIOBlockUsedBatch *batch, VirtIOBlockReq *req,
                    unsigned char status)
{
    trace_virtio_blk_req_complete(virtio_blk_vdev(req->dev), req, status);

    if (unlikely(status != VIRTIO_BLK_S_OK)) {
        if (status == VIRTIO_BLK_S_UNSUPP) {
            batch->stats.unsupp++;
        } else {
            batch->stats.ioerr++;
        }
    }
    stb_p(&req->in->status, status);
    virtio_blk_undo_cuts(req);
    batch->filled_descs += req->elem.ndescs;
    virtqueue_fill(req->vq, &req->elem, req->in_len, batch->filled++);
}

/* Account the successful requests @batch holds, with one lock */
static void virtio_blk_account_done(VirtIOBlockUsedBatch *batch)
{
    if (batch->acct_done) {
        block_acct_done_many(blk_get_stats(batch->dev->blk), batch->acct,
                             batch->acct_done);
        batch->acct_done = 0;
    }
}

/*
 * Notify the guest of what @batch published, unless EVENT_IDX or its
 * flags say not to.
 */
static void virtio_blk_notify(VirtIOBlockUsedBatch *batch)
{
    VirtIODevice *vdev = virtio_blk_vdev(batch->dev);

    if (qemu_in_iothread() ? virtio_notify_irqfd_now(vdev, batch->vq)
                           : virtio_notify(vdev, batch->vq)) {
        batch->stats.notifications++;
    } else {
        batch->stats.notifications_suppressed++;
    }
}

static void virtio_blk_notify_timer_cb(void *opaque)
{
    VirtIOBlockUsedBatch *batch = opaque;

    batch->notify_held = false;
    trace_virtio_blk_notify_held_done(virtio_blk_vdev(batch->dev), batch->vq);
    WITH_RCU_READ_LOCK_GUARD() {
        virtio_blk_notify(batch);
    }
    /* Paired with the increment in virtio_blk_hold_notification() */
    blk_dec_in_flight(batch->dev->blk);
}

/*
 * Is the queue of @batch, which publishes @n completions now, busy enough
 * to hold notifications: has it completed, over its last measured window
 * of at least VIRTIO_BLK_COALESCE_WINDOW_NS, at least the threshold's
 * requests per second?
 */
#define VIRTIO_BLK_COALESCE_WINDOW_NS (10 * SCALE_MS)

static bool virtio_blk_coalescing(VirtIOBlockUsedBatch *batch, unsigned n)
{
    uint64_t threshold = batch->dev->conf.coalesce_iops_threshold;
    int64_t now, elapsed;

    if (!threshold) {
        return true;
    }
    batch->window_requests += n;
    now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    elapsed = now - batch->window_start_ns;
    if (elapsed >= VIRTIO_BLK_COALESCE_WINDOW_NS) {
        batch->coalescing = batch->window_requests * NANOSECONDS_PER_SECOND /
                            elapsed >= threshold;
        batch->window_start_ns = now;
        batch->window_requests = 0;
    }
    return batch->coalescing;
}

/*
 * With coalescing on (coalesce-delay-us), hold the notification of the
 * @n completions @batch publishes now, if its queue is busy enough, for
 * at most the delay: a timer then notifies the guest of them and of all
 * that joined them. The used ring shows them at once, to a driver that
 * polls it. A FLUSH completion is notified at once, with all held.
 *
 * A held notification counts in the BlockBackend's in_flight, so that
 * drain, and with it reset, stop, unplug and migration, waits for it:
 * the delay is bounded, and nothing is held across them.
 * Returns whether the notification waits.
 */
static bool virtio_blk_hold_notification(VirtIOBlockUsedBatch *batch,
                                         unsigned n)
{
    VirtIOBlock *s = batch->dev;
    AioContext *ctx;

    if (batch->notify_now) {
        batch->notify_now = false;
        if (batch->notify_held) {
            timer_del(&batch->notify_timer);
            batch->notify_held = false;
            blk_dec_in_flight(s->blk);
        }
        return false;
    }
    if (batch->notify_held) {
        batch->stats.notifications_coalesced++;
        return true;
    }
    if (!virtio_blk_coalescing(batch, n)) {
        return false;
    }

    /* The queue's AioContext changes only while nothing is held */
    ctx = qemu_get_current_aio_context();
    if (batch->notify_timer_ctx != ctx) {
        aio_timer_init(ctx, &batch->notify_timer, QEMU_CLOCK_REALTIME,
                       SCALE_NS, virtio_blk_notify_timer_cb, batch);
        batch->notify_timer_ctx = ctx;
    }
    batch->notify_held = true;
    blk_inc_in_flight(s->blk);
    timer_mod_ns(&batch->notify_timer,
                 qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
                 s->conf.coalesce_delay_us * SCALE_US);
    trace_virtio_blk_notify_held(virtio_blk_vdev(s), batch->vq,
                                 s->conf.coalesce_delay_us);
    return true;
}

/*
 * Make the used entries @batch filled visible with one used index update,
 * then notify the guest, now or, coalescing, a little later. Their
 * latency is accounted up to here, when the guest can see them.
 * Called within rcu_read_lock(), as virtqueue_flush() wants.
 */
static void virtio_blk_publish_used(VirtIOBlockUsedBatch *batch)
{
    unsigned int n = batch->filled;

    if (!n) {
        return;
    }
    virtio_blk_account_done(batch);
    trace_virtio_blk_publish_used(virtio_blk_vdev(batch->dev), batch->vq, n);
    virtqueue_flush(batch->vq, n);
    batch->filled = 0;
    batch->filled_descs = 0;
    if (unlikely(batch->dev->conf.coalesce_delay_us) &&
        virtio_blk_hold_notification(batch, n)) {
        return;
    }
    virtio_blk_notify(batch);
}

static void virtio_blk_publish_bh(void *opaque)
{
    VirtIOBlockUsedBatch *batch = opaque;

    batch->publish_scheduled = false;
    WITH_RCU_READ_LOCK_GUARD() {
        virtio_blk_publish_used(batch);
    }
    /* Paired with the increment in virtio_blk_publish_soon() */
    blk_dec_in_flight(batch->dev->blk);
}

/*
 * Make what @batch filled visible: now if no other request of its queue
 * is in flight (at queue depth 1, say), else once the event loop has run
 * what is ready in this pass, so that the requests completing in it share
 * one used index update and one notification. Requests that complete
 * while virtio_blk_handle_vq() pops (GET_ID, errors) wait for that too:
 * the guest is notified once for them, not once each. Reset, stop, unplug
 * and migration drain the BlockBackend first, which waits for the latter.
 */
static inline void QEMU_ALWAYS_INLINE
virtio_blk_publish_soon(VirtIOBlockUsedBatch *batch)
{
    /* The queue counts a packed ring's chains by their descriptors */
    if (likely(!batch->popping) &&
        virtio_queue_get_inuse(batch->vq) == batch->filled_descs) {
        virtio_blk_publish_used(batch);
        return;
    }
    if (!batch->publish_scheduled) {
        AioContext *ctx = qemu_get_current_aio_context();

        /*
         * One BH per queue rather than a oneshot one per pass, which would
         * allocate; made again when the queue moves to another context.
         */
        if (unlikely(batch->publish_bh_ctx != ctx)) {
            if (batch->publish_bh) {
                qemu_bh_delete(batch->publish_bh);
            }
            batch->publish_bh = aio_bh_new(ctx, virtio_blk_publish_bh, batch);
            batch->publish_bh_ctx = ctx;
        }
        batch->publish_scheduled = true;
        blk_inc_in_flight(batch->dev->blk);
        qemu_bh_schedule(batch->publish_bh);
    }
    trace_virtio_blk_publish_later(virtio_blk_vdev(batch->dev), batch->vq,
                                   batch->filled);
}

void virtio_blk_req_complete(VirtIOBlockReq *req, unsigned char status)
{
    VirtIOBlockUsedBatch *batch = virtio_blk_used_batch(req);

    RCU_READ_LOCK_GUARD();
    virtio_blk_req_fill(batch, req, status);
    virtio_blk_publish_soon(batch);
}

/*
 * Keep @req, which failed, to start it again when the VM runs again. It
 * is parsed again then: give its buffers back the header and status bytes
 * that parsing cut off, or it would be parsed from the wrong bytes.
 */
static void virtio_blk_hold_request(VirtIOBlockReq *req)
{
    VirtIOBlock *s = req->dev;

    /* It restarts on its own, not as part of the I/O it was merged into */
    req->mr_next = NULL;
    virtio_blk_undo_cuts(req);
    virtio_blk_used_batch(req)->stats.held++;

    WITH_QEMU_LOCK_GUARD(&s->rq_lock) {
        req->next = s->rq;
        s->rq = req;
    }
}

/*
 * Apply the drive's error policy to @req, whose I/O failed with -@error.
 * Returns the status to complete it with, or VIRTIO_BLK_REQ_HELD.
 */
static int virtio_blk_apply_error_policy(VirtIOBlockReq *req, int error,
                                         bool is_read)
{
    VirtIOBlock *s = req->dev;
    BlockErrorAction action = blk_get_error_action(s->blk, is_read, error);
    int status = VIRTIO_BLK_S_OK;    /* ignored: as if it succeeded */

    trace_virtio_blk_req_error(virtio_blk_vdev(s), req, error, action);
    if (action == BLOCK_ERROR_ACTION_STOP) {
        virtio_blk_hold_request(req);
        status = VIRTIO_BLK_REQ_HELD;
    } else if (action == BLOCK_ERROR_ACTION_REPORT) {
        status = VIRTIO_BLK_S_IOERR;
    }
    /* After the hold: the VM may stop now, and must find the request */
    blk_error_action(s->blk, action, is_read, error);
    return status;
}

/*
 * Account @req, started with block_acct_start(), as completed @status,
 * before its queue publishes it: a success with the others of its batch.
 */
static void virtio_blk_account(VirtIOBlockUsedBatch *batch,
                               VirtIOBlockReq *req, int status)
{
    if (status != VIRTIO_BLK_S_OK) {
        block_acct_failed(blk_get_stats(req->dev->blk), &req->acct);
        return;
    }
    if (batch->acct_done == VIRTIO_BLK_ACCT_BATCH) {
        virtio_blk_account_done(batch);
    }
    batch->acct[batch->acct_done++] = req->acct;
}

/*
 * The I/O of @opaque, a read or a write and the requests merged into it
 * (linked by ->mr_next), completed with @ret.
 */
void virtio_blk_rw_complete(void *opaque, int ret)
{
    VirtIOBlockReq *next = opaque;
    VirtIODevice *vdev = virtio_blk_vdev(next->dev);
    VirtIOBlockUsedBatch *batch = virtio_blk_used_batch(next);

    RCU_READ_LOCK_GUARD();
    while (next) {
        VirtIOBlockReq *req = next;
        int status = VIRTIO_BLK_S_OK;

        next = req->mr_next;
        trace_virtio_blk_rw_complete(vdev, req, ret);

        if (req->qiov.nalloc != -1) {
            /* The head of a merged I/O: virtio_blk_submit_run() built it */
            qemu_iovec_destroy(&req->qiov);
        }
        if (unlikely(ret)) {
            bool is_read = !(virtio_ldl_p(vdev, &req->out.type) &
                             VIRTIO_BLK_T_OUT);

            /*
             * A failed read may have written part of the guest's buffer.
             * A held request is not completed, so migration may not copy
             * those bytes; that is fine, as the device may write to the
             * buffer until it completes the request, on the destination.
             */
            status = virtio_blk_apply_error_policy(req, -ret, is_read);
            if (status == VIRTIO_BLK_REQ_HELD) {
                continue;
            }
        }
        virtio_blk_req_fill(batch, req, status);
        virtio_blk_account(batch, req, status);
        virtio_blk_free_request(req);
    }
    virtio_blk_publish_soon(batch);
}

/* A request that is its own I/O completed with @ret */
static void virtio_blk_complete_alone(VirtIOBlockReq *req, int ret,
                                      bool accounted)
{
    int status = VIRTIO_BLK_S_OK;

    if (unlikely(ret)) {
        status = virtio_blk_apply_error_policy(req, -ret, false);
        if (status == VIRTIO_BLK_REQ_HELD) {
            return;
        }
    }
    if (accounted) {
        virtio_blk_account(virtio_blk_used_batch(req), req, status);
    }
    virtio_blk_req_complete(req, status);
    virtio_blk_free_request(req);
}

void virtio_blk_flush_complete(void *opaque, int ret)
{
    VirtIOBlockReq *req = opaque;

    /* A guest waits for its flushes: their notification is not held */
    if (unlikely(req->dev->conf.coalesce_delay_us)) {
        virtio_blk_used_batch(req)->notify_now = true;
    }
    virtio_blk_complete_alone(req, ret, true);
}

/* Write zeroes is accounted as a write; discard, as before, is not */
void virtio_blk_discard_write_zeroes_complete(void *opaque, int ret)
{
    VirtIOBlockReq *req = opaque;
    uint32_t type = virtio_ldl_p(virtio_blk_vdev(req->dev), &req->out.type);

    virtio_blk_complete_alone(req, ret,
                              (type & ~VIRTIO_BLK_T_BARRIER) ==
                              VIRTIO_BLK_T_WRITE_ZEROES);
}
