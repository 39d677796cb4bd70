/*
 * Virtio Block Device: the request path between its files
 *
 * A request travels through, in this order:
 *   virtio-blk-request.c   pop it off the virtqueue, parse it, start it
 *   virtio-blk-merge.c     reads and writes: merge, then submit
 *   virtio-blk-complete.c  status byte, error policy, used ring, notify
 * with virtio-blk-pool.c for the request's storage; virtio-blk.c keeps the
 * zoned commands, the device model and its migration.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_BLOCK_VIRTIO_BLK_INTERNAL_H
#define HW_BLOCK_VIRTIO_BLK_INTERNAL_H

#include "qemu/iov.h"
#include "hw/virtio/virtio-blk.h"

/*
 * The VirtIODevice of @s. VIRTIO_DEVICE() checks the cast at run time
 * (qom-cast-debug, on by default), some 60 instructions each time: too
 * many for every step of every request.
 */
static inline VirtIODevice *virtio_blk_vdev(VirtIOBlock *s)
{
    return &s->parent_obj;
}

/*
 * Give @req's buffers back the header and status bytes that parsing cut
 * off them: before they go back to the guest, or are parsed again.
 */
static inline void virtio_blk_undo_cuts(VirtIOBlockReq *req)
{
    iov_discard_undo(&req->inhdr_undo);
    iov_discard_undo(&req->outhdr_undo);
}

/* virtio-blk-request.c */
void virtio_blk_restart_bh(void *opaque);
void virtio_blk_drop_requests(VirtIOBlockReq *req);

/* virtio-blk-merge.c */
void virtio_blk_submit_alone(VirtIOBlock *s, MultiReqBuffer *mrb,
                             VirtIOBlockReq *req, bool is_write);
void virtio_blk_submit_list(VirtIOBlock *s, MultiReqBuffer *mrb,
                            bool is_write);
void virtio_blk_submit_writes(VirtIOBlock *s, MultiReqBuffer *mrb);
void virtio_blk_submit_pending(VirtIOBlock *s, MultiReqBuffer *mrb);

/*
 * Queue @req, a read or a write checked and accounted, in @mrb. With
 * request-merging=off it goes to the block layer at once. Inline: every
 * read and write is queued, and most only join their list.
 */
static inline void virtio_blk_queue_rw(VirtIOBlock *s, MultiReqBuffer *mrb,
                                       VirtIOBlockReq *req, bool is_write)
{
    VirtIOBlockPending *p = &mrb->pending[is_write];

    if (unlikely(!s->conf.request_merging)) {
        virtio_blk_submit_alone(s, mrb, req, is_write);
        return;
    }
    if (unlikely(p->num_reqs == VIRTIO_BLK_MAX_MERGE_REQS)) {
        virtio_blk_submit_list(s, mrb, is_write);
    }
    p->reqs[p->num_reqs++] = req;
}

/* virtio-blk-complete.c */
void virtio_blk_init_used_batches(VirtIOBlock *s);
void virtio_blk_free_used_batches(VirtIOBlock *s);
void virtio_blk_rw_complete(void *opaque, int ret);
void virtio_blk_flush_complete(void *opaque, int ret);
void virtio_blk_discard_write_zeroes_complete(void *opaque, int ret);

/* virtio-blk.c: each completes @req itself */
void virtio_blk_handle_zone_report(VirtIOBlockReq *req, struct iovec *in_iov,
                                   unsigned in_num);
int virtio_blk_handle_zone_mgmt(VirtIOBlockReq *req, BlockZoneOp op);
int virtio_blk_handle_zone_append(VirtIOBlockReq *req, struct iovec *out_iov,
                                  struct iovec *in_iov, uint64_t out_num,
                                  unsigned in_num);

#endif
