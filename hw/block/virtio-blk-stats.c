/*
 * Virtio Block Device: per-virtqueue statistics for query-stats
 *
 * Each virtqueue counts what it does in the VirtIOBlockQueueStats of its
 * used batch, in the thread that serves it (virtio-blk-request.c,
 * -merge.c, -complete.c, -pool.c). query-stats reads them in that thread
 * too: a bottom half in the queue's AioContext copies them between two
 * of its events, so that neither side needs an atomic operation.
 *
 * A device is one StatsResult of provider and target "virtio-blk", named
 * by its QOM path. Each statistic is a list with one value per virtqueue,
 * queue 0 first.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "block/aio-wait.h"
#include "hw/qdev-core.h"
#include "hw/virtio/virtio-blk.h"
#include "qapi/qapi-types-stats.h"
#include "system/stats.h"

typedef struct VirtIOBlockStatInfo {
    const char *name;
    StatsType type;
    bool bytes;                 /* else a count */
    size_t offset;              /* in VirtIOBlockQueueStats */
} VirtIOBlockStatInfo;

#define STAT(name, type, field)                                     \
    { name, STATS_TYPE_##type, false,                               \
      offsetof(VirtIOBlockQueueStats, field) }
#define STAT_BYTES(name, field)                                     \
    { name, STATS_TYPE_CUMULATIVE, true,                            \
      offsetof(VirtIOBlockQueueStats, field) }

/* The schema, in the order query-stats reports the values */
static const VirtIOBlockStatInfo virtio_blk_stat_info[] = {
    STAT("requests", CUMULATIVE, requests),
    STAT("batches", CUMULATIVE, batches),
    STAT("batch-peak", PEAK, batch_peak),
    STAT("reads", CUMULATIVE, reads),
    STAT("writes", CUMULATIVE, writes),
    STAT("flushes", CUMULATIVE, flushes),
    STAT("discards", CUMULATIVE, discards),
    STAT("write-zeroes", CUMULATIVE, write_zeroes),
    STAT_BYTES("read-bytes", read_bytes),
    STAT_BYTES("write-bytes", write_bytes),
    STAT("merged-requests", CUMULATIVE, merged_requests),
    STAT("merged-ios", CUMULATIVE, merged_ios),
    STAT("in-flight", INSTANT, in_flight),
    STAT("in-flight-peak", PEAK, in_flight_peak),
    STAT("pool-size", INSTANT, pool_size),
    STAT("ioerr", CUMULATIVE, ioerr),
    STAT("unsupp", CUMULATIVE, unsupp),
    STAT("held", CUMULATIVE, held),
    STAT("notifications", CUMULATIVE, notifications),
    STAT("notifications-suppressed", CUMULATIVE, notifications_suppressed),
    STAT("notifications-coalesced", CUMULATIVE, notifications_coalesced),
};

typedef struct VirtIOBlockStatsCopy {
    VirtIOBlock *s;
    unsigned int queue;
    VirtIOBlockQueueStats *out;
} VirtIOBlockStatsCopy;

/* In the thread that serves the queue */
static void virtio_blk_copy_queue_stats(void *opaque)
{
    VirtIOBlockStatsCopy *copy = opaque;

    *copy->out = copy->s->used_batches[copy->queue].stats;
    copy->out->in_flight = virtio_blk_pool_in_use(copy->s, copy->queue);
    copy->out->pool_size = virtio_blk_pool_size(copy->s, copy->queue);
}

/*
 * Copy the counters of queue @queue of @s to @out. Without ioeventfd
 * (not started yet, stopped, or not supported) the main loop serves
 * every queue.
 */
static void virtio_blk_read_queue_stats(VirtIOBlock *s, unsigned int queue,
                                        VirtIOBlockQueueStats *out)
{
    VirtIOBlockStatsCopy copy = { s, queue, out };
    AioContext *ctx = qemu_get_aio_context();

    if (s->ioeventfd_started) {
        ctx = s->vq_aio_context[queue];
    }
    if (ctx == qemu_get_aio_context()) {
        virtio_blk_copy_queue_stats(&copy);
    } else {
        aio_wait_bh_oneshot(ctx, virtio_blk_copy_queue_stats, &copy);
    }
}

/* Is @obj, whose QOM path is @path, one of the devices @targets names? */
static bool virtio_blk_stats_wanted(Object *obj, const char *path,
                                    strList *targets)
{
    g_autofree char *proxy_path = NULL;

    if (apply_str_list_filter(path, targets)) {
        return true;
    }
    if (!obj->parent || !object_dynamic_cast(obj->parent, TYPE_DEVICE)) {
        return false;
    }
    proxy_path = object_get_canonical_path(obj->parent);
    return apply_str_list_filter(proxy_path, targets);
}

typedef struct VirtIOBlockStatsQuery {
    StatsResultList **results;
    strList *names;
    strList *targets;
} VirtIOBlockStatsQuery;

static int virtio_blk_query_device(Object *obj, void *opaque)
{
    VirtIOBlockStatsQuery *query = opaque;
    VirtIOBlock *s = (VirtIOBlock *)object_dynamic_cast(obj, TYPE_VIRTIO_BLK);
    g_autofree VirtIOBlockQueueStats *queues = NULL;
    g_autofree char *path = NULL;
    unsigned int nqueues, i, q;
    StatsList *stats = NULL;

    if (!s || !DEVICE(obj)->realized) {
        return 0;
    }
    path = object_get_canonical_path(obj);
    if (!virtio_blk_stats_wanted(obj, path, query->targets)) {
        return 0;
    }

    nqueues = s->conf.num_queues;
    queues = g_new(VirtIOBlockQueueStats, nqueues);
    for (q = 0; q < nqueues; q++) {
        virtio_blk_read_queue_stats(s, q, &queues[q]);
    }

    /* Prepended: from the last statistic and the last queue */
    for (i = ARRAY_SIZE(virtio_blk_stat_info); i-- > 0;) {
        const VirtIOBlockStatInfo *info = &virtio_blk_stat_info[i];
        Stats *stat;

        if (!apply_str_list_filter(info->name, query->names)) {
            continue;
        }
        stat = g_new0(Stats, 1);
        stat->name = g_strdup(info->name);
        stat->value = g_new0(StatsValue, 1);
        stat->value->type = QTYPE_QLIST;
        for (q = nqueues; q-- > 0;) {
            QAPI_LIST_PREPEND(stat->value->u.list,
                              *(uint64_t *)((char *)&queues[q] +
                                            info->offset));
        }
        QAPI_LIST_PREPEND(stats, stat);
    }
    if (stats) {
        add_stats_entry(query->results, STATS_PROVIDER_VIRTIO_BLK, path,
                        stats);
    }
    return 0;
}

static void virtio_blk_stats_cb(StatsResultList **results, StatsTarget target,
                                strList *names, strList *targets,
                                Error **errp)
{
    VirtIOBlockStatsQuery query = { results, names, targets };

    GLOBAL_STATE_CODE();
    if (target == STATS_TARGET_VIRTIO_BLK) {
        object_child_foreach_recursive(object_get_root(),
                                       virtio_blk_query_device, &query);
    }
}

static void virtio_blk_schemas_cb(StatsSchemaList **results, Error **errp)
{
    StatsSchemaValueList *schema = NULL;
    unsigned int i;

    for (i = ARRAY_SIZE(virtio_blk_stat_info); i-- > 0;) {
        const VirtIOBlockStatInfo *info = &virtio_blk_stat_info[i];
        StatsSchemaValue *value = g_new0(StatsSchemaValue, 1);

        value->name = g_strdup(info->name);
        value->type = info->type;
        if (info->bytes) {
            value->has_unit = true;
            value->unit = STATS_UNIT_BYTES;
        }
        QAPI_LIST_PREPEND(schema, value);
    }
    add_stats_schema(results, STATS_PROVIDER_VIRTIO_BLK,
                     STATS_TARGET_VIRTIO_BLK, schema);
}

void virtio_blk_register_stats(void)
{
    add_stats_callbacks(STATS_PROVIDER_VIRTIO_BLK, virtio_blk_stats_cb,
                        virtio_blk_schemas_cb);
}
