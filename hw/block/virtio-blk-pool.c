/*
 * Virtio Block Device: request pools
 *
 * Each virtqueue keeps the requests it has used in a pool and takes the
 * next request it pops from there: a request's state (VirtIOBlockReq) and
 * the storage of its scatter-gather lists are allocated once and reused,
 * so that taking a request off the ring allocates nothing in steady state.
 *
 * A pool only grows when all its requests are in use and the ring has
 * another one, so it holds no more requests than the ring has entries:
 * the device cannot have more in use. (A ring whose avail index claims
 * more makes it grow by one, then virtqueue_pop_into() marks the device
 * broken.)
 *
 * Taking a request and giving it back are inline, in virtio-blk.h: every
 * request does both.
 *
 * A pool is used by one thread at a time: the AioContext that serves its
 * virtqueue, which also completes the requests it submits, or the main
 * loop while no AioContext serves the queue (reset, unplug, requests held
 * across a stop and restarted).
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/virtio/virtio-blk.h"
#include "trace.h"

unsigned int virtio_blk_pool_in_use(VirtIOBlock *s, unsigned int index)
{
    VirtIOBlockReqPool *pool = &s->req_pools[index];

    return pool->size - pool->nidle;
}

unsigned int virtio_blk_pool_size(VirtIOBlock *s, unsigned int index)
{
    return s->req_pools[index].size;
}

/* Add a request to empty @pool, for virtqueue @vq of @s */
void virtio_blk_pool_grow(VirtIOBlock *s, VirtQueue *vq,
                          VirtIOBlockReqPool *pool)
{
    pool->idle = g_renew(VirtIOBlockReq *, pool->idle, pool->size + 1);
    pool->idle[pool->nidle++] = g_new0(VirtIOBlockReq, 1);
    pool->size++;
    trace_virtio_blk_pool_grow(s, virtio_get_queue_index(vq), pool->size);
}

void virtio_blk_init_pools(VirtIOBlock *s)
{
    s->req_pools = g_new0(VirtIOBlockReqPool, s->conf.num_queues);
}

void virtio_blk_free_pools(VirtIOBlock *s)
{
    unsigned int i, j;

    for (i = 0; i < s->conf.num_queues; i++) {
        VirtIOBlockReqPool *pool = &s->req_pools[i];

        /* every request is back: drained, held requests dropped */
        assert(pool->nidle == pool->size);
        for (j = 0; j < pool->nidle; j++) {
            VirtIOBlockReq *req = pool->idle[j];

            g_free(req->sg.addr);
            g_free(req->sg.iov);
            g_free(req);
        }
        g_free(pool->idle);
    }
    g_free(s->req_pools);
    s->req_pools = NULL;
}
