/*
 * Virtio Block Device: merging reads and writes into fewer I/Os
 *
 * The reads and the writes a pass over a virtqueue parses wait in two
 * lists, one per direction, so that a stream which interleaves them still
 * merges. A list is submitted when it is full, when a FLUSH needs the
 * writes before it out, and when the pass ends: if a request starts
 * where another ends, sorted by sector, each run of sequential requests
 * becomes one I/O as long as it stays within the backend's max_transfer
 * and max_iov; if none does, each request is an I/O of its own.
 * virtio_blk_rw_complete() completes every request of a run when its I/O
 * completes.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "block/block.h"
#include "system/block-backend.h"
#include "virtio-blk-internal.h"
#include "trace.h"

/*
 * Make the @n > 1 requests at @reqs, sequential and sorted, one I/O of
 * @niov buffers. The first request carries it: its qiov becomes the
 * merged one, and ->mr_next links the others for the completion.
 */
static void virtio_blk_merge_run(VirtIOBlock *s, MultiReqBuffer *mrb,
                                 VirtIOBlockReq **reqs, unsigned int n,
                                 int niov, bool is_write)
{
    VirtIOBlockReq *head = reqs[0];
    QEMUIOVector merged;
    unsigned int i;

    qemu_iovec_init(&merged, niov);
    for (i = 0; i < n; i++) {
        qemu_iovec_concat(&merged, &reqs[i]->qiov, 0, reqs[i]->qiov.size);
        if (i > 0) {
            reqs[i - 1]->mr_next = reqs[i];
        }
    }
    head->qiov = merged;    /* the head's own is external: no leak */
    mrb->stats->merged_requests += n;
    mrb->stats->merged_ios++;
    block_acct_merge_done(blk_get_stats(s->blk),
                          is_write ? BLOCK_ACCT_WRITE : BLOCK_ACCT_READ,
                          n - 1);
}

/*
 * Submit the @n requests at @reqs, sequential and sorted, as one I/O of
 * @niov buffers. Inline: at depth, random I/O submits every request on
 * its own.
 */
static inline void QEMU_ALWAYS_INLINE
virtio_blk_submit_run(VirtIOBlock *s, MultiReqBuffer *mrb,
                      VirtIOBlockReq **reqs, unsigned int n, int niov,
                      bool is_write)
{
    VirtIOBlockReq *head = reqs[0];
    int64_t offset = head->sector_num << BDRV_SECTOR_BITS;
    BdrvRequestFlags flags = 0;

    if (n > 1) {
        virtio_blk_merge_run(s, mrb, reqs, n, niov, is_write);
    }
    trace_virtio_blk_submit(virtio_blk_vdev(s), head, n, offset,
                            head->qiov.size, is_write);

    if (blk_ram_registrar_ok(&s->blk_ram_registrar)) {
        flags |= BDRV_REQ_REGISTERED_BUF;
    }
    if (is_write) {
        blk_aio_pwritev(s->blk, offset, &head->qiov, flags,
                        virtio_blk_rw_complete, head);
    } else {
        blk_aio_preadv(s->blk, offset, &head->qiov, flags,
                       virtio_blk_rw_complete, head);
    }
}

/*
 * Sort @p by sector, keeping the order of equal ones. It holds at most
 * VIRTIO_BLK_MAX_MERGE_REQS requests, often in order already: an
 * insertion sort costs a fraction of what qsort() does.
 */
static void virtio_blk_sort_pending(VirtIOBlockPending *p)
{
    unsigned int i, j;

    for (i = 1; i < p->num_reqs; i++) {
        VirtIOBlockReq *req = p->reqs[i];

        for (j = i; j > 0 && p->reqs[j - 1]->sector_num > req->sector_num;
             j--) {
            p->reqs[j] = p->reqs[j - 1];
        }
        p->reqs[j] = req;
    }
}

/* The sector after @req */
static inline int64_t virtio_blk_req_end(VirtIOBlockReq *req)
{
    return req->sector_num + req->qiov.size / BDRV_SECTOR_SIZE;
}

/* The set virtio_blk_pending_adjacent() keeps: twice the list's size */
#define VIRTIO_BLK_ADJACENT_SLOT_BITS 6
#define VIRTIO_BLK_ADJACENT_SLOTS (1u << VIRTIO_BLK_ADJACENT_SLOT_BITS)
QEMU_BUILD_BUG_ON(VIRTIO_BLK_ADJACENT_SLOTS < 2 * VIRTIO_BLK_MAX_MERGE_REQS);

/* A slot of that set */
static inline unsigned int virtio_blk_sector_slot(int64_t sector)
{
    /* Fibonacci hashing: the top bits of the product, one per slot bit */
    return ((uint64_t)sector * 0x9e3779b97f4a7c15ull) >>
           (64 - VIRTIO_BLK_ADJACENT_SLOT_BITS);
}

/*
 * Does a request of @p start where another one ends? Only then is there
 * a run to merge, and a reason to sort: random I/O, the common case at
 * depth, skips the sort. An open-addressing set of the ends, twice as
 * many slots as the list holds requests, answers it in two passes.
 */
static bool virtio_blk_pending_adjacent(VirtIOBlockPending *p)
{
    uint64_t ends[VIRTIO_BLK_ADJACENT_SLOTS] = {};  /* end + 1: 0 is free */
    unsigned int i, slot;

    for (i = 0; i < p->num_reqs; i++) {
        int64_t end = virtio_blk_req_end(p->reqs[i]);

        for (slot = virtio_blk_sector_slot(end); ends[slot];
             slot = (slot + 1) % ARRAY_SIZE(ends)) {
            /* probe on */
        }
        ends[slot] = end + 1;
    }
    for (i = 0; i < p->num_reqs; i++) {
        int64_t start = p->reqs[i]->sector_num;

        for (slot = virtio_blk_sector_slot(start); ends[slot];
             slot = (slot + 1) % ARRAY_SIZE(ends)) {
            if (ends[slot] == start + 1) {
                return true;
            }
        }
    }
    return false;
}

/*
 * Submit the pending reads or writes of @mrb, merged into as few I/Os as
 * the backend takes
 */
void virtio_blk_submit_list(VirtIOBlock *s, MultiReqBuffer *mrb,
                            bool is_write)
{
    VirtIOBlockPending *p = &mrb->pending[is_write];
    uint64_t max_transfer, bytes = 0;
    int max_iov, niov = 0;
    int64_t end = 0;            /* the sector after the run */
    unsigned int start = 0, i;

    if (p->num_reqs <= 1 || !virtio_blk_pending_adjacent(p)) {
        for (i = 0; i < p->num_reqs; i++) {
            virtio_blk_submit_run(s, mrb, &p->reqs[i], 1, p->reqs[i]->qiov.niov,
                                  is_write);
        }
        p->num_reqs = 0;
        return;
    }

    virtio_blk_sort_pending(p);
    max_transfer = blk_get_max_transfer(s->blk);
    max_iov = blk_get_max_iov(s->blk);

    for (i = 0; i < p->num_reqs; i++) {
        VirtIOBlockReq *req = p->reqs[i];

        /* A run ends at a gap or an overlap, or where it would grow too big */
        if (i > start &&
            (req->sector_num != end ||
             niov + req->qiov.niov > max_iov ||
             bytes + req->qiov.size > max_transfer)) {
            virtio_blk_submit_run(s, mrb, &p->reqs[start], i - start, niov,
                                  is_write);
            start = i;
            niov = 0;
            bytes = 0;
        }
        niov += req->qiov.niov;
        bytes += req->qiov.size;
        end = virtio_blk_req_end(req);
    }
    virtio_blk_submit_run(s, mrb, &p->reqs[start], i - start, niov,
                          is_write);
    p->num_reqs = 0;
}

/* Submit @req on its own: with request-merging=off */
void virtio_blk_submit_alone(VirtIOBlock *s, MultiReqBuffer *mrb,
                             VirtIOBlockReq *req, bool is_write)
{
    virtio_blk_submit_run(s, mrb, &req, 1, req->qiov.niov, is_write);
}

/* Submit the writes of @mrb, before a FLUSH */
void virtio_blk_submit_writes(VirtIOBlock *s, MultiReqBuffer *mrb)
{
    virtio_blk_submit_list(s, mrb, true);
}

/*
 * Submit every request of @mrb: the pass over the virtqueue is over.  A
 * pass often has only reads or only writes: no call for the empty list.
 */
void virtio_blk_submit_pending(VirtIOBlock *s, MultiReqBuffer *mrb)
{
    if (mrb->pending[false].num_reqs) {
        virtio_blk_submit_list(s, mrb, false);
    }
    if (mrb->pending[true].num_reqs) {
        virtio_blk_submit_list(s, mrb, true);
    }
}
