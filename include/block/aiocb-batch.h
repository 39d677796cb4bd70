/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * AIOCB storage without the heap, and completions run in batches
 *
 * An emulated AIO request that completes before its submission function
 * returns must not call its callback from there: the caller may not have
 * stored the AIOCB yet.  Such completions used to go through a oneshot
 * bottom half each, a heap allocation and a BH list insertion per
 * request.  aiocb_defer_completion() queues them instead on a ring that
 * one bottom half per AioContext runs in the next event-loop pass.
 *
 * AIOCBs whose AIOCBInfo sets .cached come from a small per-thread cache
 * (qemu_aio_get() and qemu_aio_unref() use it), so a steady stream of
 * requests allocates nothing.
 */

#ifndef BLOCK_AIOCB_BATCH_H
#define BLOCK_AIOCB_BATCH_H

#include "block/aio.h"

/* The largest AIOCB the per-thread cache stores */
#define AIOCB_CACHE_OBJECT_SIZE 128

/*
 * Return storage for an AIOCB of @size bytes (at most
 * AIOCB_CACHE_OBJECT_SIZE) from this thread's cache, or a new block.
 */
void *aiocb_cache_alloc(size_t size);

/*
 * Give @acb's storage back to this thread's cache, or to the heap when the
 * cache is full.  The thread need not be the one that allocated it.
 */
void aiocb_cache_free(void *acb);

/*
 * Run @fn(@opaque) in a later pass of @ctx's event loop, after the caller
 * returned, in the order the calls were made.  @ctx is the caller's
 * qemu_get_current_aio_context(), which submission paths have at hand.
 * Like a oneshot BH, but with no allocation in steady state and one BH
 * for all the completions of a pass.
 */
void aiocb_defer_completion(AioContext *ctx, QEMUBHFunc *fn, void *opaque);

#endif /* BLOCK_AIOCB_BATCH_H */
