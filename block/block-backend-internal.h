/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What block-backend.c shares with block-backend-io.c, the request path
 * of a BlockBackend: the BlockBackend itself and the emulated AIO request
 * that the path's blk_aio_* functions and block-backend.c's ioctl and zone
 * commands run in a coroutine.
 */

#ifndef BLOCK_BACKEND_INTERNAL_H
#define BLOCK_BACKEND_INTERNAL_H

#include "system/block-backend.h"
#include "block/block_int.h"

/* The ret of an emulated AIO request whose coroutine has not finished */
#define NOT_DONE 0x7fffffff

typedef struct BlockBackendAioNotifier {
    void (*attached_aio_context)(AioContext *new_context, void *opaque);
    void (*detach_aio_context)(void *opaque);
    void *opaque;
    QLIST_ENTRY(BlockBackendAioNotifier) list;
} BlockBackendAioNotifier;

struct BlockBackend {
    char *name;
    int refcnt;
    BdrvChild *root;
    AioContext *ctx; /* access with atomic operations only */
    DriveInfo *legacy_dinfo;    /* null unless created by drive_new() */
    QTAILQ_ENTRY(BlockBackend) link;         /* for block_backends */
    QTAILQ_ENTRY(BlockBackend) monitor_link; /* for monitor_block_backends */
    BlockBackendPublic public;

    DeviceState *dev;           /* attached device model, if any */
    const BlockDevOps *dev_ops;
    void *dev_opaque;

    /*
     * If the BDS tree is removed, some of its options are stored here (which
     * can be used to restore those options in the new BDS on insert)
     */
    BlockBackendRootState root_state;

    bool enable_write_cache;

    /* I/O stats (display with "info blockstats"). */
    BlockAcctStats stats;

    BlockdevOnError on_read_error, on_write_error;
    bool iostatus_enabled;
    BlockDeviceIoStatus iostatus;

    uint64_t perm;
    uint64_t shared_perm;
    bool disable_perm;

    bool allow_aio_context_change;
    bool allow_write_beyond_eof;

    /* Protected by BQL */
    NotifierList remove_bs_notifiers, insert_bs_notifiers;
    QLIST_HEAD(, BlockBackendAioNotifier) aio_notifiers;

    int quiesce_counter; /* atomic: written under BQL, read by other threads */
    QemuMutex queued_requests_lock; /* protects queued_requests */
    CoQueue queued_requests;
    bool disable_request_queuing; /* atomic */
    int start_request_count; /* atomic */

    VMChangeStateEntry *vmsh;
    bool force_allow_inactivate;

    /*
     * Number of in-flight aio requests.  BlockDriverState also counts
     * in-flight requests but aio requests can exist even when blk->root is
     * NULL, so we cannot rely on its counter for that case.
     * Accessed with atomic ops.
     */
    unsigned int in_flight;
};

/* blk_bs(), without a call for the request path in block-backend-io.c */
static inline BlockDriverState *blk_root_bs(BlockBackend *blk)
{
    return blk->root ? blk->root->bs : NULL;
}

/* blk_dev_is_tray_open(), which calls it, without a call */
static inline bool blk_root_tray_is_open(BlockBackend *blk)
{
    return blk->dev_ops && blk->dev_ops->is_tray_open &&
           blk->dev_ops->is_tray_open(blk->dev_opaque);
}

/*
 * blk_co_is_available(), which calls it, without a call for the request
 * path: a node with its medium in, and no open tray.
 */
static inline bool coroutine_fn GRAPH_RDLOCK
blk_root_is_available(BlockBackend *blk)
{
    BlockDriverState *bs = blk_root_bs(blk);

    return bs && bdrv_co_request_is_inserted(bs) &&
           !blk_root_tray_is_open(blk);
}

/*
 * blk_inc_in_flight() and blk_dec_in_flight(), which call them, without a
 * call: every request counts itself in and out
 */
static inline void blk_in_flight_inc(BlockBackend *blk)
{
    qatomic_inc(&blk->in_flight);
}

static inline void blk_in_flight_dec(BlockBackend *blk)
{
    qatomic_dec(&blk->in_flight);
    aio_wait_kick_after_rmw();
}

/* The arguments and the result of an emulated AIO request */
typedef struct BlkRwCo {
    BlockBackend *blk;
    int64_t offset;
    void *iobuf;
    int ret;
    BdrvRequestFlags flags;
} BlkRwCo;

typedef struct BlkAioEmAIOCB {
    BlockAIOCB common;
    BlkRwCo rwco;
    int64_t bytes;
    bool has_returned;  /* blk_aio_prwv() returned: the callback may run */
} BlkAioEmAIOCB;

extern const AIOCBInfo blk_aio_em_aiocb_info;

/*
 * Start @co_entry(@acb) in a coroutine for an emulated AIO request; the
 * entry ends with blk_aio_complete().  @cb runs after this returned.
 */
BlockAIOCB *blk_aio_prwv(BlockBackend *blk, int64_t offset, int64_t bytes,
                         void *iobuf, CoroutineEntry co_entry,
                         BdrvRequestFlags flags,
                         BlockCompletionFunc *cb, void *opaque);
void blk_aio_complete(BlkAioEmAIOCB *acb);
void blk_aio_complete_bh(void *opaque);

/* blk_wait_while_drained()'s slow path */
void coroutine_fn blk_queue_while_drained(BlockBackend *blk);

/*
 * Queue the request while @blk is drained, unless @flags or @blk say not
 * to.  Called between exactly one pair of blk_inc/dec_in_flight().  Inline
 * with blk_check_byte_request(): every request of the path runs both.
 */
static inline void coroutine_fn blk_wait_while_drained(BlockBackend *blk,
                                                       BdrvRequestFlags flags)
{
    assert(blk->in_flight > 0);

    if (flags & BDRV_REQ_NO_QUEUE) {
        /* Between blk_co_start_request() and blk_end_request() */
        assert(qatomic_read(&blk->start_request_count));
        return;
    }
    if (unlikely(qatomic_read(&blk->quiesce_counter)) &&
        !qatomic_read(&blk->disable_request_queuing)) {
        blk_queue_while_drained(blk);
    }
}

/* 0 if [@offset, @offset + @bytes) is a valid request, else -errno */
static inline int coroutine_fn GRAPH_RDLOCK
blk_check_byte_request(BlockBackend *blk, int64_t offset, int64_t bytes)
{
    int64_t len;

    /* The errors, in the order callers have always seen them */
    if (unlikely(bytes < 0)) {
        return -EIO;
    }
    if (unlikely(!blk_root_is_available(blk))) {
        return -ENOMEDIUM;
    }
    if (unlikely(offset < 0)) {
        return -EIO;
    }
    if (blk->allow_write_beyond_eof) {
        return 0;
    }

    len = bdrv_co_request_length(blk_root_bs(blk));
    if (unlikely(len < 0)) {
        return len;
    }
    if (unlikely(offset > len || len - offset < bytes)) {
        return -EIO;
    }
    return 0;
}

#endif /* BLOCK_BACKEND_INTERNAL_H */
