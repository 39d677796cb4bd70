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
#include "qemu/coroutine-tls.h"

#ifdef CONFIG_ASAN_IFACE_FIBER
#include <sanitizer/asan_interface.h>
#endif

/* The largest AIOCB the per-thread cache stores */
#define AIOCB_CACHE_OBJECT_SIZE 128

/* How many free AIOCBs a thread keeps */
#define AIOCB_CACHE_MAX 256

/*
 * A thread's free AIOCBs.  Only for the inline functions below: the
 * rest is aiocb-batch.c's.
 */
typedef struct AiocbCache {
    /* Not linked through themselves, so that all of a free one is poisoned */
    void *free[AIOCB_CACHE_MAX];
    unsigned int n_free;
    /* AIOCB_CACHE_MAX once the thread frees the cache when it exits */
    unsigned int limit;
} AiocbCache;

QEMU_DECLARE_CO_TLS(AiocbCache, aiocb_cache)

void *aiocb_cache_alloc_slow(void);
void aiocb_cache_free_slow(void *acb);

/* Under AddressSanitizer a free AIOCB is poisoned: a use is reported */
static inline void aiocb_cache_poison(void *acb)
{
#ifdef CONFIG_ASAN_IFACE_FIBER
    ASAN_POISON_MEMORY_REGION(acb, AIOCB_CACHE_OBJECT_SIZE);
#endif
}

static inline void aiocb_cache_unpoison(void *acb)
{
#ifdef CONFIG_ASAN_IFACE_FIBER
    ASAN_UNPOISON_MEMORY_REGION(acb, AIOCB_CACHE_OBJECT_SIZE);
#endif
}

/*
 * Return storage for an AIOCB of @size bytes (at most
 * AIOCB_CACHE_OBJECT_SIZE) from this thread's cache, or a new block.
 * Inline: qemu_aio_get() runs it for every cached AIOCB.
 */
static inline void *aiocb_cache_alloc(size_t size)
{
    AiocbCache *c = get_ptr_aiocb_cache();
    void *acb;

    assert(size <= AIOCB_CACHE_OBJECT_SIZE);
    if (unlikely(!c->n_free)) {
        return aiocb_cache_alloc_slow();
    }
    acb = c->free[--c->n_free];
    aiocb_cache_unpoison(acb);
    return acb;
}

/*
 * Give @acb's storage back to this thread's cache, or to the heap when the
 * cache is full.  The thread need not be the one that allocated it.
 */
static inline void aiocb_cache_free(void *acb)
{
    AiocbCache *c = get_ptr_aiocb_cache();

    if (unlikely(c->n_free == c->limit)) {
        aiocb_cache_free_slow(acb);
        return;
    }
    aiocb_cache_poison(acb);
    c->free[c->n_free++] = acb;
}

/*
 * Run @fn(@opaque) in a later pass of @ctx's event loop, after the caller
 * returned, in the order the calls were made.  @ctx is the caller's
 * qemu_get_current_aio_context(), which submission paths have at hand.
 * Like a oneshot BH, but with no allocation in steady state and one BH
 * for all the completions of a pass.
 */
void aiocb_defer_completion(AioContext *ctx, QEMUBHFunc *fn, void *opaque);

/*
 * An event-loop handler that submits a batch of requests may run what
 * completed at once before it returns, rather than leave it to the BH:
 * the loop then needs no second pass for it (at queue depth 1, that pass
 * is a good part of a request's cost).  Between aiocb_batch_begin() and
 * aiocb_batch_end(), completions deferred in the calling iothread's own
 * context wait for aiocb_batch_end(), which runs its whole ring; in the
 * main context, whose ring vCPU threads share, the BH runs them as
 * before.  Only where a BH could run: outside coroutines, with no lock
 * held that a callback might take.  Sections nest.
 */
void aiocb_batch_begin(void);
void aiocb_batch_end(void);

#endif /* BLOCK_AIOCB_BATCH_H */
