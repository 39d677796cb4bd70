/*
 * Virtio Block Device: taking requests off a virtqueue and starting them
 *
 * A kick runs virtio_blk_handle_vq() in the AioContext that serves the
 * virtqueue. With the guest's notifications off, it pops every available
 * request into storage from the queue's pool (virtio-blk-pool.c), parses
 * its header and starts it: reads and writes wait in a MultiReqBuffer to
 * be merged when the pass ends (virtio-blk-merge.c), the other types go
 * to the block layer at once or complete here. virtio-blk-complete.c
 * completes them.
 *
 * The guest writes every byte parsed here and may change it at any time:
 * each value is read once, each check is unlikely(), and every request
 * ends in one place, virtio_blk_handle_request(), that completes it with
 * the status its handler gave, or drops it if the ring is broken.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/defer-call.h"
#include "qemu/iov.h"
#include "block/accounting.h"
#include "block/block.h"
#include "system/block-backend.h"
#include "hw/virtio/virtio-access.h"
#include "virtio-blk-internal.h"
#include "trace.h"

/*
 * What a handler returns besides a status to complete the request with at
 * once: the request is started and completes later (or has completed),
 * or the ring is broken and the device was marked so.
 */
#define VIRTIO_BLK_REQ_STARTED  0x100
#define VIRTIO_BLK_REQ_BROKEN   (-1)

/*
 * Is [@sector, @sector + @size) a range the disk can take: aligned to its
 * logical block size, within it and within the block layer's limit?
 * Inline: every read and write checks.  The disk's size is looked up once
 * a pass.  A shrink can land inside one (its drain does not wait for
 * requests not yet submitted): a request admitted past the new end then
 * fails the block layer's range check, -EIO through the error policy, as
 * upstream's does when checked just before the shrink and submitted after.
 */
static inline bool QEMU_ALWAYS_INLINE
virtio_blk_sect_range_ok(VirtIOBlock *s, MultiReqBuffer *mrb,
                         uint64_t sector, uint64_t size)
{
    uint64_t nb_sectors = size >> BDRV_SECTOR_BITS;

    if (unlikely(nb_sectors > BDRV_REQUEST_MAX_SECTORS ||
                 (sector & s->sector_mask) ||
                 size % s->conf.conf.logical_block_size)) {
        return false;
    }
    if (mrb->disk_sectors == UINT64_MAX) {
        blk_get_geometry(s->blk, &mrb->disk_sectors);
    }
    return likely(sector <= mrb->disk_sectors &&
                  nb_sectors <= mrb->disk_sectors - sector);
}

/*
 * Read the header off the front of the driver's buffers and find the
 * status byte, the last byte of the device's; cut both off, undoably,
 * so that *@out_iov and @in_iov then hold the data. "The driver MUST
 * place the header in the device-readable part [...] and the status in
 * the device-writable part" (virtio 1.2, 5.2.6): without them there is no
 * request, and no status to answer it with.
 */
static bool virtio_blk_cut_headers(VirtIOBlockReq *req,
                                   struct iovec **out_iov, unsigned *out_num,
                                   struct iovec *in_iov, unsigned *in_num)
{
    VirtIODevice *vdev = virtio_blk_vdev(req->dev);
    struct iovec *last;

    if (unlikely(*out_num < 1 || *in_num < 1)) {
        virtio_error(vdev, "virtio-blk missing headers");
        return false;
    }
    if (unlikely(iov_to_buf(*out_iov, *out_num, 0, &req->out,
                            sizeof(req->out)) != sizeof(req->out))) {
        virtio_error(vdev, "virtio-blk request outhdr too short");
        return false;
    }
    last = &in_iov[*in_num - 1];
    if (unlikely(last->iov_len < sizeof(struct virtio_blk_inhdr))) {
        virtio_error(vdev, "virtio-blk request inhdr too short");
        return false;
    }

    /* The used length counts every device-writable byte, status included */
    req->in_len = iov_size(in_iov, *in_num);
    req->in = last->iov_base + last->iov_len - sizeof(struct virtio_blk_inhdr);

    /*
     * Each header in a buffer of its own, as Linux frames a request: the
     * data starts at the next buffer and ends before the last one, with
     * no buffer to cut, nor to restore.
     */
    if (likely((*out_iov)->iov_len == sizeof(req->out) &&
               last->iov_len == sizeof(struct virtio_blk_inhdr))) {
        req->outhdr_undo.modified_iov = NULL;
        req->inhdr_undo.modified_iov = NULL;
        (*out_iov)++;
        (*out_num)--;
        (*in_num)--;
        return true;
    }
    iov_discard_front_undoable(out_iov, out_num, sizeof(req->out),
                               &req->outhdr_undo);
    iov_discard_back_undoable(in_iov, in_num, sizeof(struct virtio_blk_inhdr),
                              &req->inhdr_undo);
    return true;
}

/*
 * Start accounting @req: requests popped in one pass start at the same
 * time, the first one's, read once per pass.
 */
static void virtio_blk_acct_start(VirtIOBlockReq *req, MultiReqBuffer *mrb,
                                  int64_t bytes, enum BlockAcctType type)
{
    if (!mrb->acct_start_ns) {
        mrb->acct_start_ns = block_acct_clock_ns();
    }
    block_acct_start_at(blk_get_stats(req->dev->blk), &req->acct, bytes, type,
                        mrb->acct_start_ns);
}

/* VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT */
static inline int QEMU_ALWAYS_INLINE
virtio_blk_start_rw(VirtIOBlockReq *req, MultiReqBuffer *mrb, bool is_write,
                    struct iovec *data_iov, unsigned data_num)
{
    VirtIOBlock *s = req->dev;
    VirtIODevice *vdev = virtio_blk_vdev(s);
    enum BlockAcctType acct_type = is_write ? BLOCK_ACCT_WRITE
                                            : BLOCK_ACCT_READ;

    req->sector_num = virtio_ldq_p(vdev, &req->out.sector);
    qemu_iovec_init_external(&req->qiov, data_iov, data_num);
    if (is_write) {
        trace_virtio_blk_handle_write(vdev, req, req->sector_num,
                                      req->qiov.size / BDRV_SECTOR_SIZE);
    } else {
        trace_virtio_blk_handle_read(vdev, req, req->sector_num,
                                     req->qiov.size / BDRV_SECTOR_SIZE);
    }

    if (unlikely(!virtio_blk_sect_range_ok(s, mrb, req->sector_num,
                                           req->qiov.size))) {
        block_acct_invalid(blk_get_stats(s->blk), acct_type);
        return VIRTIO_BLK_S_IOERR;
    }

    if (is_write) {
        mrb->stats->writes++;
        mrb->stats->write_bytes += req->qiov.size;
    } else {
        mrb->stats->reads++;
        mrb->stats->read_bytes += req->qiov.size;
    }
    virtio_blk_acct_start(req, mrb, req->qiov.size, acct_type);
    virtio_blk_queue_rw(s, mrb, req, is_write);
    return VIRTIO_BLK_REQ_STARTED;
}

/* VIRTIO_BLK_T_FLUSH */
static int virtio_blk_start_flush(VirtIOBlockReq *req, MultiReqBuffer *mrb)
{
    VirtIOBlock *s = req->dev;

    trace_virtio_blk_handle_flush(virtio_blk_vdev(s), req);
    mrb->stats->flushes++;
    virtio_blk_acct_start(req, mrb, 0, BLOCK_ACCT_FLUSH);

    /*
     * The writes parsed before the flush reach the block layer before it,
     * and no write parsed after it merges with them.
     */
    virtio_blk_submit_writes(s, mrb);
    blk_aio_flush(s->blk, virtio_blk_flush_complete, req);
    return VIRTIO_BLK_REQ_STARTED;
}

/* VIRTIO_BLK_T_GET_ID */
static int virtio_blk_get_id(VirtIOBlockReq *req, struct iovec *in_iov,
                             unsigned in_num)
{
    VirtIOBlock *s = req->dev;
    const char *serial = s->conf.serial ? s->conf.serial : "";
    /* The ID ends with a NUL only if it is shorter than its 20 bytes */
    size_t len = MIN(MIN(strlen(serial) + 1, VIRTIO_BLK_ID_BYTES),
                     iov_size(in_iov, in_num));

    trace_virtio_blk_handle_get_id(virtio_blk_vdev(s), req);
    iov_from_buf(in_iov, in_num, 0, serial, len);
    return VIRTIO_BLK_S_OK;
}

/*
 * VIRTIO_BLK_T_SCSI_CMD, legacy, never supported. A legacy driver frames
 * it exactly: the header and the command block out; the sense buffer, a
 * virtio_scsi_inhdr and the status in. Its `errors` gets a nonzero value
 * so that the guest's SG_IO ioctl fails as well.
 */
static int virtio_blk_refuse_scsi(VirtIOBlockReq *req)
{
    VirtQueueElement *elem = &req->elem;
    struct iovec *scsi_iov;

    if (unlikely(elem->out_num < 2 || elem->in_num < 3)) {
        return VIRTIO_BLK_S_IOERR;
    }
    scsi_iov = &elem->in_sg[elem->in_num - 2];
    if (unlikely(scsi_iov->iov_len != sizeof(struct virtio_scsi_inhdr))) {
        return VIRTIO_BLK_S_IOERR;
    }
    virtio_stl_p(virtio_blk_vdev(req->dev),
                 &((struct virtio_scsi_inhdr *)scsi_iov->iov_base)->errors,
                 255);
    return VIRTIO_BLK_S_UNSUPP;
}

/* Can the disk take this discard or write zeroes range? */
static int virtio_blk_check_discard_write_zeroes(VirtIOBlock *s,
                                                 MultiReqBuffer *mrb,
                                                 bool is_write_zeroes,
                                                 uint64_t sector,
                                                 uint32_t num_sectors,
                                                 uint32_t flags)
{
    /* At most BDRV_REQUEST_MAX_SECTORS: the byte count fits an int */
    uint32_t max_sectors = is_write_zeroes ? s->conf.max_write_zeroes_sectors
                                           : s->conf.max_discard_sectors;

    if (unlikely(num_sectors > max_sectors ||
                 !virtio_blk_sect_range_ok(s, mrb, sector,
                                           (uint64_t)num_sectors <<
                                           BDRV_SECTOR_BITS))) {
        return VIRTIO_BLK_S_IOERR;
    }
    /*
     * "The device MUST set the status byte to VIRTIO_BLK_S_UNSUPP for
     * discard and write zeroes commands if any unknown flag is set.
     * Furthermore, the device MUST set the status byte to
     * VIRTIO_BLK_S_UNSUPP for discard commands if the unmap flag is set."
     * (virtio 1.2, 5.2.6.2)
     */
    if (unlikely(flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP ||
                 (!is_write_zeroes &&
                  (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)))) {
        return VIRTIO_BLK_S_UNSUPP;
    }
    return VIRTIO_BLK_S_OK;
}

/* VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES: one range each */
static int virtio_blk_start_discard_write_zeroes(VirtIOBlockReq *req,
                                                 MultiReqBuffer *mrb,
                                                 uint32_t type,
                                                 struct iovec *out_iov,
                                                 unsigned out_num)
{
    VirtIOBlock *s = req->dev;
    VirtIODevice *vdev = virtio_blk_vdev(s);
    bool is_write_zeroes = (type & ~VIRTIO_BLK_T_BARRIER) ==
                           VIRTIO_BLK_T_WRITE_ZEROES;
    struct virtio_blk_discard_write_zeroes range;
    uint64_t sector;
    uint32_t num_sectors, flags;
    int status;

    /* Both types have VIRTIO_BLK_T_OUT; more than one range is not taken */
    if (unlikely(!(type & VIRTIO_BLK_T_OUT) ||
                 iov_size(out_iov, out_num) > sizeof(range))) {
        return VIRTIO_BLK_S_UNSUPP;
    }
    if (unlikely(iov_to_buf(out_iov, out_num, 0, &range, sizeof(range)) !=
                 sizeof(range))) {
        virtio_error(vdev, "virtio-blk discard/write_zeroes header"
                     " too short");
        return VIRTIO_BLK_REQ_BROKEN;
    }

    sector = virtio_ldq_p(vdev, &range.sector);
    num_sectors = virtio_ldl_p(vdev, &range.num_sectors);
    flags = virtio_ldl_p(vdev, &range.flags);
    trace_virtio_blk_handle_discard_write_zeroes(vdev, req, sector,
                                                 num_sectors, flags,
                                                 is_write_zeroes);

    status = virtio_blk_check_discard_write_zeroes(s, mrb, is_write_zeroes,
                                                   sector, num_sectors, flags);
    if (unlikely(status != VIRTIO_BLK_S_OK)) {
        if (is_write_zeroes) {
            block_acct_invalid(blk_get_stats(s->blk), BLOCK_ACCT_WRITE);
        }
        return status;
    }

    if (is_write_zeroes) {
        mrb->stats->write_zeroes++;
        block_acct_start(blk_get_stats(s->blk), &req->acct,
                         num_sectors << BDRV_SECTOR_BITS, BLOCK_ACCT_WRITE);
        blk_aio_pwrite_zeroes(s->blk, sector << BDRV_SECTOR_BITS,
                              num_sectors << BDRV_SECTOR_BITS,
                              flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP ?
                              BDRV_REQ_MAY_UNMAP : 0,
                              virtio_blk_discard_write_zeroes_complete, req);
    } else {
        mrb->stats->discards++;
        blk_aio_pdiscard(s->blk, sector << BDRV_SECTOR_BITS,
                         num_sectors << BDRV_SECTOR_BITS,
                         virtio_blk_discard_write_zeroes_complete, req);
    }
    return VIRTIO_BLK_REQ_STARTED;
}

/*
 * A type this device does not know. A subclass may (vmapple's does): the
 * class is looked up only here, off the hot path. Otherwise the status is
 * "VIRTIO_BLK_S_UNSUPP for a request unsupported by device" (5.2.6).
 */
static int virtio_blk_start_unknown(VirtIOBlockReq *req, MultiReqBuffer *mrb,
                                    uint32_t type)
{
    VirtIOBlkClass *vbk = VIRTIO_BLK_GET_CLASS(req->dev);

    if (vbk->handle_unknown_request &&
        vbk->handle_unknown_request(req, mrb, type)) {
        return VIRTIO_BLK_REQ_STARTED;
    }
    trace_virtio_blk_handle_unsupported(virtio_blk_vdev(req->dev), req, type);
    return VIRTIO_BLK_S_UNSUPP;
}

/* Parse @req and start it; see the VIRTIO_BLK_REQ_* values */
static int virtio_blk_start_request(VirtIOBlockReq *req, MultiReqBuffer *mrb)
{
    struct iovec *out_iov = req->elem.out_sg;
    struct iovec *in_iov = req->elem.in_sg;
    unsigned out_num = req->elem.out_num;
    unsigned in_num = req->elem.in_num;
    uint32_t type;

    if (unlikely(!virtio_blk_cut_headers(req, &out_iov, &out_num,
                                         in_iov, &in_num))) {
        return VIRTIO_BLK_REQ_BROKEN;
    }
    type = virtio_ldl_p(virtio_blk_vdev(req->dev), &req->out.type);

    /*
     * VIRTIO_BLK_T_OUT gives the direction. VIRTIO_BLK_T_BARRIER is a
     * legacy flag the driver should not send unless negotiated; it has
     * always been ignored, and still is.
     */
    switch (type & ~(VIRTIO_BLK_T_OUT | VIRTIO_BLK_T_BARRIER)) {
    case VIRTIO_BLK_T_IN:
        if (type & VIRTIO_BLK_T_OUT) {
            return virtio_blk_start_rw(req, mrb, true, out_iov, out_num);
        }
        return virtio_blk_start_rw(req, mrb, false, in_iov, in_num);
    case VIRTIO_BLK_T_FLUSH:    /* and VIRTIO_BLK_T_FLUSH_OUT, legacy */
        return virtio_blk_start_flush(req, mrb);
    case VIRTIO_BLK_T_GET_ID:
        return virtio_blk_get_id(req, in_iov, in_num);
    case VIRTIO_BLK_T_SCSI_CMD:
        return virtio_blk_refuse_scsi(req);
    /* These two have VIRTIO_BLK_T_OUT set: it is masked above */
    case VIRTIO_BLK_T_DISCARD & ~VIRTIO_BLK_T_OUT:
    case VIRTIO_BLK_T_WRITE_ZEROES & ~VIRTIO_BLK_T_OUT:
        return virtio_blk_start_discard_write_zeroes(req, mrb, type, out_iov,
                                                     out_num);
    case VIRTIO_BLK_T_ZONE_REPORT:
        virtio_blk_handle_zone_report(req, in_iov, in_num);
        return VIRTIO_BLK_REQ_STARTED;
    case VIRTIO_BLK_T_ZONE_OPEN:
        virtio_blk_handle_zone_mgmt(req, BLK_ZO_OPEN);
        return VIRTIO_BLK_REQ_STARTED;
    case VIRTIO_BLK_T_ZONE_CLOSE:
        virtio_blk_handle_zone_mgmt(req, BLK_ZO_CLOSE);
        return VIRTIO_BLK_REQ_STARTED;
    case VIRTIO_BLK_T_ZONE_FINISH:
        virtio_blk_handle_zone_mgmt(req, BLK_ZO_FINISH);
        return VIRTIO_BLK_REQ_STARTED;
    case VIRTIO_BLK_T_ZONE_RESET:
    case VIRTIO_BLK_T_ZONE_RESET_ALL:   /* told apart by the handler */
        virtio_blk_handle_zone_mgmt(req, BLK_ZO_RESET);
        return VIRTIO_BLK_REQ_STARTED;
    case VIRTIO_BLK_T_ZONE_APPEND & ~VIRTIO_BLK_T_OUT:
        virtio_blk_handle_zone_append(req, out_iov, in_iov, out_num, in_num);
        return VIRTIO_BLK_REQ_STARTED;
    default:
        return virtio_blk_start_unknown(req, mrb, type);
    }
}

/*
 * Start @req, or complete it at once with the status its handler gave.
 * Returns -1 if the ring is broken: the caller then drops @req.
 */
static int virtio_blk_handle_request(VirtIOBlockReq *req, MultiReqBuffer *mrb)
{
    int status;

    /* A restarted request was cut before: nothing is left to undo */
    req->outhdr_undo.modified_iov = NULL;
    req->inhdr_undo.modified_iov = NULL;

    status = virtio_blk_start_request(req, mrb);
    if (likely(status == VIRTIO_BLK_REQ_STARTED)) {
        return 0;
    }
    if (unlikely(status == VIRTIO_BLK_REQ_BROKEN)) {
        trace_virtio_blk_ring_broken(virtio_blk_vdev(req->dev), req);
        virtio_blk_undo_cuts(req);
        return -1;
    }
    virtio_blk_req_complete(req, status);
    virtio_blk_free_request(req);
    return 0;
}

/*
 * Drop @req, popped but not started (or held for a restart), and the
 * requests @req->next links: give their elements back unused.
 */
void virtio_blk_drop_requests(VirtIOBlockReq *req)
{
    while (req) {
        VirtIOBlockReq *next = req->next;

        virtqueue_detach_element(req->vq, &req->elem, 0);
        virtio_blk_free_request(req);
        req = next;
    }
}

/*
 * Start a pass over the requests of the queue with @index.  Only the
 * counts: the request lists are written before they are read, and the
 * ~0.5 KiB of them need no zeroing on every pass.
 */
static inline void virtio_blk_init_mrb(VirtIOBlock *s, MultiReqBuffer *mrb,
                                       unsigned int index)
{
    mrb->pending[0].num_reqs = 0;
    mrb->pending[1].num_reqs = 0;
    mrb->acct_start_ns = 0;
    mrb->disk_sectors = UINT64_MAX;
    mrb->stats = &s->used_batches[index].stats;
}

/*
 * Pop and start every request @vq has. The guest's notifications stay off
 * while the device is popping anyway, and the queue is checked again once
 * they are back on, for a request added in between. The reads and writes
 * are merged and submitted once the queue is empty, within one
 * defer_call section so that the backend can submit them in one go.
 */
void virtio_blk_handle_vq(VirtIOBlock *s, VirtQueue *vq)
{
    bool suppress_notifications = virtio_queue_get_notification(vq);
    unsigned int index = virtio_get_queue_index(vq);
    VirtIOBlockReqPool *pool = &s->req_pools[index];
    VirtIOBlockUsedBatch *batch = &s->used_batches[index];
    VirtIOBlockReq *req;
    MultiReqBuffer mrb QEMU_UNINITIALIZED;
    unsigned int nreqs = 0;

    virtio_blk_init_mrb(s, &mrb, index);
    defer_call_begin();
    batch->popping = true;
    do {
        if (suppress_notifications) {
            virtio_queue_set_notification(vq, 0);
        }
        while ((req = virtio_blk_pop_request(s, vq, pool))) {
            nreqs++;
            if (unlikely(virtio_blk_handle_request(req, &mrb))) {
                virtio_blk_drop_requests(req);
                break;
            }
        }
    } while (suppress_notifications ?
             virtio_queue_rearm_notification(vq) :
             !virtio_queue_empty(vq));

    trace_virtio_blk_handle_vq(virtio_blk_vdev(s), vq, nreqs);
    if (nreqs) {
        /* Nothing completes during the pass: its end is the peak */
        mrb.stats->requests += nreqs;
        mrb.stats->batches++;
        mrb.stats->batch_peak = MAX(mrb.stats->batch_peak, nreqs);
        mrb.stats->in_flight_peak = MAX(mrb.stats->in_flight_peak,
                                        virtio_blk_pool_in_use(s, index));
    }
    virtio_blk_submit_pending(s, &mrb);
    batch->popping = false;
    defer_call_end();
}

/*
 * Restart the requests held by the error policy of one virtqueue, in its
 * AioContext: scheduled by virtio_blk_dma_restart_cb() when the VM runs
 * again, with @opaque the list of them (linked by ->next).
 */
void virtio_blk_restart_bh(void *opaque)
{
    VirtIOBlockReq *req = opaque;
    VirtIOBlock *s = req->dev;
    MultiReqBuffer mrb QEMU_UNINITIALIZED;

    virtio_blk_init_mrb(s, &mrb, virtio_get_queue_index(req->vq));

    while (req) {
        VirtIOBlockReq *next = req->next;

        trace_virtio_blk_restart(virtio_blk_vdev(s), req);
        mrb.stats->requests++;
        if (unlikely(virtio_blk_handle_request(req, &mrb))) {
            /* The device waits for a reset now: drop what is left */
            virtio_blk_drop_requests(req);
            break;
        }
        req = next;
    }
    virtio_blk_submit_pending(s, &mrb);

    /* Paired with the increment in virtio_blk_dma_restart_cb() */
    blk_dec_in_flight(s->conf.conf.blk);
}
