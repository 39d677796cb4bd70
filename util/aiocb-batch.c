/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * AIOCB storage without the heap, and completions run in batches
 *
 * See include/block/aiocb-batch.h.  Both pieces of state are per thread:
 * a thread runs at most one AioContext of its own (an iothread, or the
 * main loop), and the AIOCB cache needs no lock when each thread keeps
 * its own.  The main AioContext is the exception: vCPU threads holding
 * the BQL submit requests in it too, so its completion ring is a single
 * one that the BQL protects.
 */

#include "qemu/osdep.h"
#include "qemu/coroutine-tls.h"
#include "qemu/main-loop.h"
#include "qemu/notify.h"
#include "qemu/thread.h"
#include "system/replay.h"
#include "block/aiocb-batch.h"
#include "trace.h"

QEMU_DEFINE_CO_TLS(AiocbThreadState, aiocb_thread_state)
QEMU_DEFINE_CO_TLS(AiocbCache, aiocb_cache)

AiocbCompletionRing aiocb_main_ring;

static void aiocb_ring_run(void *opaque);

static void aiocb_ring_grow(AiocbCompletionRing *ring)
{
    unsigned size = ring->size ? ring->size * 2 : 64;
    AiocbCompletion *slots = g_new(AiocbCompletion, size);
    unsigned i;

    for (i = 0; i < ring->len; i++) {
        slots[i] = ring->slots[(ring->head + i) & (ring->size - 1)];
    }
    g_free(ring->slots);
    ring->slots = slots;
    ring->size = size;
    ring->head = 0;
}

/*
 * The BH: run the completions queued before this pass.  Each is taken off
 * the ring before it runs, so a callback that polls the event loop, or
 * queues new completions, finds the ring consistent; the new ones run in
 * the next pass, so a callback that resubmits cannot keep the loop here.
 *
 * While completions wait behind the one running, the BH stays scheduled:
 * a callback that waits in a nested event loop (say, blk_drain() of
 * another BlockBackend) must see them run there, as it would with a
 * oneshot BH each, or it would wait for ever.  It is not cancelled once
 * they are done: scheduling it notified the AioContext, and a cancel
 * would leave that notice for the next pass, which with adaptive polling
 * takes it for an event found while polling and grows the context
 * notifier's poll time, after which every pass busy-polls.  Run empty,
 * the BH lets the next pass consume the notice instead.
 */
static void aiocb_ring_run(void *opaque)
{
    AiocbCompletionRing *ring = opaque;
    unsigned n = ring->len;

    trace_aiocb_ring_run(ring->ctx, n);
    if (n > 1) {
        qemu_bh_schedule(ring->bh);
    }
    while (n-- && ring->len) {
        AiocbCompletion c = ring->slots[ring->head];

        ring->head = (ring->head + 1) & (ring->size - 1);
        ring->len--;
        c.fn(c.opaque);
    }
    if (ring->len) {
        qemu_bh_schedule(ring->bh);
    }
}

static void aiocb_thread_exit(Notifier *n, void *unused)
{
    AiocbThreadState *s = container_of(n, AiocbThreadState, exit_notifier);
    AiocbCompletionRing *ring = &s->ring;
    AiocbCache *c = get_ptr_aiocb_cache();

    /*
     * Every queued completion holds its BlockBackend in flight, and the
     * context is drained before its thread stops: the ring is empty.
     */
    assert(!ring->len);
    if (ring->bh) {
        qemu_bh_delete(ring->bh);
    }
    g_free(ring->slots);
    *s = (AiocbThreadState) {};

    while (c->n_free) {
        void *acb = c->free[--c->n_free];

        aiocb_cache_unpoison(acb);
        g_free(acb);
    }
    c->limit = 0;
}

static AiocbThreadState *aiocb_thread_state(void)
{
    AiocbThreadState *s = get_ptr_aiocb_thread_state();

    if (unlikely(!s->exit_notifier.notify)) {
        s->exit_notifier.notify = aiocb_thread_exit;
        qemu_thread_atexit_add(&s->exit_notifier);
    }
    return s;
}

/* The first completion deferred in @ctx: its ring needs a BH */
static AiocbCompletionRing *aiocb_ring_setup(AioContext *ctx)
{
    AiocbCompletionRing *ring = ctx == qemu_get_aio_context()
                                ? &aiocb_main_ring
                                : &aiocb_thread_state()->ring;

    assert(!ring->ctx);
    ring->bh = aio_bh_new(ctx, aiocb_ring_run, ring);
    qatomic_set(&ring->ctx, ctx);
    return ring;
}

/*
 * aiocb_defer_completion() under record/replay, or for a ring to set up
 * or grow first
 */
void aiocb_defer_completion_slow(AioContext *ctx, QEMUBHFunc *fn,
                                 void *opaque)
{
    AiocbThreadState *s;
    AiocbCompletionRing *ring;
    bool batched = false;

    /* Record/replay orders BHs by its own log */
    if (replay_mode != REPLAY_MODE_NONE && replay_events_enabled()) {
        replay_bh_schedule_oneshot_event(ctx, fn, opaque);
        return;
    }

    if (ctx == qatomic_read(&aiocb_main_ring.ctx)) {
        ring = &aiocb_main_ring;
    } else {
        s = aiocb_thread_state();
        ring = &s->ring;
        if (ring->ctx != ctx) {
            ring = aiocb_ring_setup(ctx);
        }
        batched = ring == &s->ring && s->batch_depth;
    }
    if (ring->len == ring->size) {
        aiocb_ring_grow(ring);
    }
    aiocb_ring_push(ring, fn, opaque, batched);
}

void aiocb_batch_begin(void)
{
    get_ptr_aiocb_thread_state()->batch_depth++;
}

void aiocb_batch_end(void)
{
    AiocbThreadState *s = get_ptr_aiocb_thread_state();

    assert(s->batch_depth);
    if (--s->batch_depth == 0 && s->ring.len) {
        aiocb_ring_run(&s->ring);
    }
}

/* The cache is empty: a new block, of the size every cached one has */
void *aiocb_cache_alloc_slow(void)
{
    trace_aiocb_cache_miss();
    return g_malloc(AIOCB_CACHE_OBJECT_SIZE);
}

void aiocb_cache_free_slow(void *acb)
{
    AiocbCache *c = get_ptr_aiocb_cache();

    if (c->limit == AIOCB_CACHE_MAX) {
        g_free(acb);            /* the cache is full */
        return;
    }
    /* The thread's first free: from now on its exit frees the cache */
    aiocb_thread_state();
    c->limit = AIOCB_CACHE_MAX;
    aiocb_cache_free(acb);
}
