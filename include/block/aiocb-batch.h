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
#include "qemu/notify.h"
#include "exec/replay-core.h"

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

/* Fill in what qemu_aio_get() sets in every AIOCB */
static inline void *qemu_aio_init(BlockAIOCB *acb, const AIOCBInfo *aiocb_info,
                                  BlockDriverState *bs,
                                  BlockCompletionFunc *cb, void *opaque)
{
    acb->aiocb_info = aiocb_info;
    acb->bs = bs;
    acb->cb = cb;
    acb->opaque = opaque;
    acb->refcnt = 1;
    return acb;
}

/*
 * qemu_aio_get() and qemu_aio_unref() for an AIOCBInfo that sets .cached,
 * which they call: inline for a request path that knows its AIOCBInfo
 */
static inline void *qemu_aio_get_cached(const AIOCBInfo *aiocb_info,
                                        BlockDriverState *bs,
                                        BlockCompletionFunc *cb, void *opaque)
{
    assert(aiocb_info->cached);
    return qemu_aio_init(aiocb_cache_alloc(aiocb_info->aiocb_size),
                         aiocb_info, bs, cb, opaque);
}

static inline void qemu_aio_unref_cached(BlockAIOCB *acb)
{
    assert(acb->refcnt > 0);
    if (--acb->refcnt == 0) {
        aiocb_cache_free(acb);
    }
}

/*
 * The completion rings.  Only for aiocb_defer_completion() below: the
 * rest is aiocb-batch.c's.
 */
typedef struct AiocbCompletion {
    QEMUBHFunc *fn;
    void *opaque;
} AiocbCompletion;

/* The completions one AioContext still has to run, oldest first */
typedef struct AiocbCompletionRing {
    AioContext *ctx;
    QEMUBH *bh;
    AiocbCompletion *slots;
    unsigned size;      /* a power of two, or 0 before the first use */
    unsigned head;
    unsigned len;
} AiocbCompletionRing;

typedef struct AiocbThreadState {
    AiocbCompletionRing ring;   /* for the thread's own iothread context */
    unsigned batch_depth;       /* in aiocb_batch_begin()/_end() */
    Notifier exit_notifier;     /* frees the ring and the AiocbCache */
} AiocbThreadState;

QEMU_DECLARE_CO_TLS(AiocbThreadState, aiocb_thread_state)

/* The main loop's ring, for the main thread and vCPU threads (BQL) */
extern AiocbCompletionRing aiocb_main_ring;

void aiocb_defer_completion_slow(AioContext *ctx, QEMUBHFunc *fn,
                                 void *opaque);

/*
 * Queue @fn(@opaque) on @ring, which has room; the BH runs it unless
 * @batched (a batch will)
 */
static inline void aiocb_ring_push(AiocbCompletionRing *ring,
                                   QEMUBHFunc *fn, void *opaque,
                                   bool batched)
{
    ring->slots[(ring->head + ring->len) & (ring->size - 1)] =
        (AiocbCompletion) { .fn = fn, .opaque = opaque };
    if (ring->len++ == 0 && !batched) {
        qemu_bh_schedule(ring->bh);
    }
}

/*
 * Run @fn(@opaque) in a later pass of @ctx's event loop, after the caller
 * returned, in the order the calls were made.  @ctx is the caller's
 * qemu_get_current_aio_context(), which submission paths have at hand.
 * Like a oneshot BH, but with no allocation in steady state and one BH
 * for all the completions of a pass.  Inline: every emulated AIO request
 * that completes at once takes it.
 */
static inline void aiocb_defer_completion(AioContext *ctx, QEMUBHFunc *fn,
                                          void *opaque)
{
    AiocbCompletionRing *ring = &aiocb_main_ring;
    bool batched = false;

    /*
     * Iothreads read the main ring's ctx too, only to find that it is not
     * theirs.  A ring is set up on its first use.
     */
    if (ctx != qatomic_read(&aiocb_main_ring.ctx)) {
        AiocbThreadState *s = get_ptr_aiocb_thread_state();

        ring = &s->ring;
        /* A batch holds back only the thread's own ring (see below) */
        batched = s->batch_depth;
    }
    if (unlikely(replay_mode != REPLAY_MODE_NONE || ring->ctx != ctx ||
                 ring->len == ring->size)) {
        aiocb_defer_completion_slow(ctx, fn, opaque);
        return;
    }
    aiocb_ring_push(ring, fn, opaque, batched);
}

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
