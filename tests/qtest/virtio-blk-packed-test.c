/*
 * QTest testcase for virtio-blk on a packed virtqueue
 *
 * libqos drives split rings only; this is a small packed-ring driver
 * (virtio 1.2, 2.8): writes and reads, each a chain of three descriptors
 * or one indirect table, batches that wrap around the ring, and the data
 * read back compared with what was written. With VIRTIO_RING_F_EVENT_IDX
 * it also drives the event suppression structures (2.8.10): it kicks
 * only where the device's asks for it, and asks for an interrupt once the
 * device has used a batch's last slot (one interrupt), or, for one batch,
 * the slot after it (none). With VIRTIO_F_IN_ORDER, each batch, in
 * reverse sector order, must be used in the order it was made available.
 *
 * On the fork, whose trace events tell when it makes used slots visible,
 * it also checks that the completion that ends a batch publishes it at
 * once rather than from a bottom half (stock QEMU, which these tests also
 * run on, has not the trace events this reads).
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest-single.h"
#include "qobject/qdict.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_pci.h"
#include "standard-headers/linux/virtio_ring.h"
#include "libqos/qgraph.h"
#include "libqos/virtio-pci.h"
#include "virtio-blk-ring.h"

#define PACKED_RING_SIZE    64
#define PACKED_BATCH        16      /* requests per kick: 3 to 48 slots */
#define PACKED_ROUNDS       6       /* enough to wrap the ring three times */
#define PACKED_DISK_SIZE    (4 * 1024 * 1024)
#define SECTOR_SIZE         512
#define DATA_SIZE           4096
#define TIMEOUT_US          (30 * 1000 * 1000)

#define DESC_F_AVAIL        (1 << VRING_PACKED_DESC_F_AVAIL)
#define DESC_F_USED         (1 << VRING_PACKED_DESC_F_USED)

typedef struct PackedRing {
    QVirtQueue *vq;
    uint16_t next_avail;
    bool avail_wrap;
    uint16_t next_used;
    bool used_wrap;
} PackedRing;

typedef struct PackedCase {
    const char *name;
    bool iothread;              /* the device runs in iothread0 */
    bool event_idx;
    bool in_order;              /* the device has in_order=on */
    char *log;                  /* QEMU's trace output */
} PackedCase;

typedef struct PackedReq {
    uint64_t buf;               /* header at 0, status at 16, data at 64 */
    uint64_t table;             /* indirect table, or 0 */
    uint16_t ndescs;            /* ring slots it takes */
    bool done;
} PackedReq;

static char *disk_path;

static void *packed_setup(GString *cmd_line, void *arg)
{
    PackedCase *pc = arg;
    int fd = g_file_open_tmp("qtest-packed.XXXXXX", &disk_path, NULL);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, PACKED_DISK_SIZE), ==, 0);
    close(fd);
    g_string_append_printf(cmd_line,
                           " -drive if=none,id=drive0,file=%s,format=raw ",
                           disk_path);
    if (pc->iothread) {
        g_string_append(cmd_line, " -object iothread,id=iothread0 ");
    }

    /* interrupts sent, from the main loop or the iothread, and publishing */
    g_free(pc->log);
    fd = g_file_open_tmp("qtest-packed-XXXXXX.log", &pc->log, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    g_string_append_printf(cmd_line, " -D %s -trace virtio_notify"
                           " -trace virtio_notify_irqfd"
                           " -trace virtio_blk_publish_used"
                           " -trace virtio_blk_publish_later ", pc->log);
    return arg;
}

/* Interrupts the device has sent so far */
static int packed_notifies(PackedCase *pc)
{
    g_auto(GStrv) lines = vbr_read_trace(global_qtest, pc->log);
    int n = 0, i;

    for (i = 0; lines[i]; i++) {
        n += vbr_trace_event(lines[i], "virtio_notify") ||
             vbr_trace_event(lines[i], "virtio_notify_irqfd");
    }
    return n;
}

/* Whether this QEMU has trace event @name */
static bool packed_has_trace_event(const char *name)
{
    QDict *rsp = qtest_qmp(global_qtest,
                           "{ 'execute': 'trace-event-get-state',"
                           " 'arguments': { 'name': %s } }", name);
    bool has = qdict_haskey(rsp, "return");

    qobject_unref(rsp);
    return has;
}

/*
 * Once the device has used a whole batch, the completion that ended it
 * must have made the batch's used slots visible at once, not left them
 * to a bottom half as it does while other requests are in flight: the
 * last virtio_blk_publish_used must not follow a virtio_blk_publish_later
 * that had filled as many. A packed ring counts the requests in flight
 * by their descriptors, so a device that compares them with a count of
 * requests instead always defers.
 */
static void packed_assert_published_at_once(PackedCase *pc)
{
    g_auto(GStrv) lines = vbr_read_trace(global_qtest, pc->log);
    int64_t deferred = -1, last_deferred = -1, last_count = -1;
    int i;

    for (i = 0; lines[i]; i++) {
        const char *fields;

        fields = vbr_trace_event(lines[i], "virtio_blk_publish_later");
        if (fields) {
            deferred = vbr_trace_field(fields, "filled");
            continue;
        }
        fields = vbr_trace_event(lines[i], "virtio_blk_publish_used");
        if (fields) {
            last_count = vbr_trace_field(fields, "count");
            last_deferred = deferred;
            deferred = -1;
        }
    }
    g_assert_cmpint(last_count, >, 0);
    g_assert_cmpint(last_deferred, !=, last_count);
}

/*
 * With EVENT_IDX, whether the device asks for a kick now that the driver
 * has made @added more slots available (2.8.10.1): its event suppression
 * structure disables kicks, enables them, or names the slot whose
 * making available wants one.
 */
static bool packed_kick_wanted(PackedRing *r, uint16_t added)
{
    uint16_t off_wrap = qtest_readw(global_qtest, r->vq->used);
    uint16_t flags = qtest_readw(global_qtest, r->vq->used + 2);
    uint16_t new = r->next_avail, old = new - added;
    uint16_t off = off_wrap & ~(1 << VRING_PACKED_EVENT_F_WRAP_CTR);

    if (flags == VRING_PACKED_EVENT_FLAG_DISABLE) {
        return false;
    }
    if (flags == VRING_PACKED_EVENT_FLAG_ENABLE) {
        return true;
    }
    g_assert_cmpuint(flags, ==, VRING_PACKED_EVENT_FLAG_DESC);
    if ((off_wrap >> VRING_PACKED_EVENT_F_WRAP_CTR) != r->avail_wrap) {
        off -= r->vq->size;
    }
    return (uint16_t)(new - off - 1) < (uint16_t)(new - old);
}

/*
 * With EVENT_IDX, ask for an interrupt once the device has used the slot
 * @slots - 1 past the next one to be used: the last of a batch that takes
 * @slots slots, whatever order its requests complete in.
 */
static void packed_want_interrupt_after(PackedRing *r, uint16_t slots)
{
    uint16_t last = r->next_used + slots - 1;
    bool wrap = r->used_wrap;

    if (last >= r->vq->size) {
        last -= r->vq->size;
        wrap = !wrap;
    }
    qtest_writew(global_qtest, r->vq->avail,
                 last | wrap << VRING_PACKED_EVENT_F_WRAP_CTR);
    qtest_writew(global_qtest, r->vq->avail + 2,
                 VRING_PACKED_EVENT_FLAG_DESC);
}

/*
 * With EVENT_IDX, wait until the device, idle, has asked for a kick at
 * the next slot the driver makes available (it turns its notifications
 * back on at the end of the pass that used the batch, which the driver
 * can see complete before that pass ends).
 */
static void packed_wait_rearmed(PackedRing *r)
{
    uint16_t want = r->next_avail |
                    r->avail_wrap << VRING_PACKED_EVENT_F_WRAP_CTR;
    gint64 start = g_get_monotonic_time();

    while (qtest_readw(global_qtest, r->vq->used + 2) !=
           VRING_PACKED_EVENT_FLAG_DESC ||
           qtest_readw(global_qtest, r->vq->used) != want) {
        g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
        g_usleep(100);
    }
}

static void desc_write(uint64_t at, uint64_t addr, uint32_t len, uint16_t id,
                       uint16_t flags)
{
    uint8_t d[16];

    stq_le_p(d, addr);
    stl_le_p(d + 8, len);
    stw_le_p(d + 12, id);
    stw_le_p(d + 14, flags);
    qtest_bufwrite(global_qtest, at, d, sizeof(d));
}

/* The flags that make a ring slot available in the current lap */
static uint16_t avail_flags(PackedRing *r)
{
    return r->avail_wrap ? DESC_F_AVAIL : DESC_F_USED;
}

/*
 * Put request @id in the ring: @type at @sector, three buffers (header,
 * data, status), in the ring or in an indirect table. The first slot is
 * written not available (its AVAIL and USED bits the other way round, as
 * a used slot of this lap): the caller makes it available once the whole
 * batch is in the ring, as a driver writes a chain's head flags last, so
 * that a device that polls the ring never sees half a chain. Returns that
 * slot.
 */
static uint16_t packed_add(PackedRing *r, QGuestAllocator *alloc,
                           PackedReq *req, uint16_t id, uint32_t type,
                           uint64_t sector, bool indirect)
{
    uint16_t data_flags = type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0;
    uint64_t descs = r->vq->desc;
    uint16_t first = r->next_avail;
    uint8_t hdr[16];
    int i;

    stl_le_p(hdr, type);
    stl_le_p(hdr + 4, 0);
    stq_le_p(hdr + 8, sector);
    qtest_bufwrite(global_qtest, req->buf, hdr, sizeof(hdr));
    qtest_writeb(global_qtest, req->buf + 16, 0xff);

    if (indirect) {
        req->table = guest_alloc(alloc, 3 * 16);
        desc_write(req->table, req->buf, 16, 0, 0);
        desc_write(req->table + 16, req->buf + 64, DATA_SIZE, 0, data_flags);
        desc_write(req->table + 32, req->buf + 16, 1, 0, VRING_DESC_F_WRITE);
        req->ndescs = 1;
    } else {
        req->ndescs = 3;
    }

    for (i = 0; i < req->ndescs; i++) {
        uint16_t slot = r->next_avail;
        uint16_t flags = avail_flags(r);

        if (i == 0) {
            flags ^= DESC_F_AVAIL | DESC_F_USED;    /* hidden, see above */
        }

        if (indirect) {
            desc_write(descs + slot * 16, req->table, 3 * 16, id,
                       flags | VRING_DESC_F_INDIRECT);
        } else if (i == 0) {
            desc_write(descs + slot * 16, req->buf, 16, id,
                       flags | VRING_DESC_F_NEXT);
        } else if (i == 1) {
            desc_write(descs + slot * 16, req->buf + 64, DATA_SIZE, id,
                       flags | VRING_DESC_F_NEXT | data_flags);
        } else {
            desc_write(descs + slot * 16, req->buf + 16, 1, id,
                       flags | VRING_DESC_F_WRITE);
        }
        if (++r->next_avail == r->vq->size) {
            r->next_avail = 0;
            r->avail_wrap = !r->avail_wrap;
        }
    }
    return first;
}

/* Wait for the next used slot; returns its buffer id */
static uint16_t packed_wait_used(PackedRing *r, PackedReq *reqs)
{
    uint64_t slot = r->vq->desc + r->next_used * 16;
    gint64 start = g_get_monotonic_time();
    uint16_t flags, id;

    for (;;) {
        flags = qtest_readw(global_qtest, slot + 14);
        if (!!(flags & DESC_F_AVAIL) == r->used_wrap &&
            !!(flags & DESC_F_USED) == r->used_wrap) {
            break;
        }
        g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
        g_usleep(100);
    }
    id = qtest_readw(global_qtest, slot + 12);
    g_assert_cmpuint(id, <, PACKED_BATCH);
    g_assert_false(reqs[id].done);
    reqs[id].done = true;
    r->next_used += reqs[id].ndescs;
    if (r->next_used >= r->vq->size) {
        r->next_used -= r->vq->size;
        r->used_wrap = !r->used_wrap;
    }
    return id;
}

/*
 * The sector of request @i of a batch at @base: in sequence, or with
 * VIRTIO_F_IN_ORDER in reverse, which the device merges into one I/O in
 * sector order; it must still use them in the order made available.
 */
static uint64_t packed_sector(PackedCase *pc, uint64_t base, int i)
{
    int slot = pc->in_order ? PACKED_BATCH - 1 - i : i;

    return base + slot * (DATA_SIZE / SECTOR_SIZE);
}

static void test_packed_rw(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    PackedCase *pc = data;
    uint8_t *expect = g_malloc0(PACKED_DISK_SIZE);
    PackedReq reqs[PACKED_BATCH];
    PackedRing r = { .avail_wrap = true, .used_wrap = true };
    uint64_t features = qvirtio_get_features(dev);
    uint8_t buf[DATA_SIZE];
    bool publish_traced;
    int round, i, j;

    g_assert_cmphex(features & (1ull << VIRTIO_F_RING_PACKED), !=, 0);
    g_assert_cmphex(features & (1ull << VIRTIO_RING_F_EVENT_IDX), !=, 0);
    features &= ~(QVIRTIO_F_BAD_FEATURE | (1ull << VIRTIO_BLK_F_SCSI));
    if (!pc->event_idx) {
        features &= ~(1ull << VIRTIO_RING_F_EVENT_IDX);
    }
    g_assert_cmpint(!!(features & (1ull << VIRTIO_F_IN_ORDER)), ==,
                    pc->in_order);
    qvirtio_set_features(dev, features);

    /* the ring the size of PACKED_RING_SIZE (virtio 1 lets a driver) */
    dev->bus->queue_select(dev, 0);
    qpci_io_writew(pdev->pdev, pdev->bar, pdev->common_cfg_offset +
                   offsetof(struct virtio_pci_common_cfg, queue_size),
                   PACKED_RING_SIZE);
    /*
     * libqos lays a split ring out: its descriptor table is where the
     * packed ring goes (16 bytes a slot), its avail ring where the driver
     * event suppression area goes (flags 0: notify), its used ring where
     * the device's goes. The split layout's "next" fields are the packed
     * flags: clear them, or slots look available.
     */
    r.vq = qvirtqueue_setup(dev, alloc, 0);
    g_assert_cmpuint(r.vq->size, ==, PACKED_RING_SIZE);
    qtest_memset(global_qtest, r.vq->desc, 0, PACKED_RING_SIZE * 16);
    qtest_writel(global_qtest, r.vq->avail, 0);
    qvirtio_set_driver_ok(dev);
    publish_traced = packed_has_trace_event("virtio_blk_publish_used");

    for (i = 0; i < PACKED_BATCH; i++) {
        reqs[i].buf = guest_alloc(alloc, 64 + DATA_SIZE);
    }

    for (round = 0; round < PACKED_ROUNDS; round++) {
        /* even rounds write, odd rounds read back what was written */
        uint32_t type = round % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
        uint64_t base = (round / 2) * PACKED_BATCH * (DATA_SIZE / SECTOR_SIZE);
        uint16_t first[PACKED_BATCH];
        uint16_t first_flags[PACKED_BATCH];
        uint16_t slots = 0;
        int notifies = 0;
        bool no_interrupt = false;

        for (i = 0; i < PACKED_BATCH; i++) {
            uint64_t sector = packed_sector(pc, base, i);

            if (type == VIRTIO_BLK_T_OUT) {
                for (j = 0; j < DATA_SIZE; j++) {
                    buf[j] = round * 31 + i * 7 + j;
                }
                memcpy(expect + sector * SECTOR_SIZE, buf, DATA_SIZE);
                qtest_bufwrite(global_qtest, reqs[i].buf + 64, buf,
                               DATA_SIZE);
            } else {
                qtest_memset(global_qtest, reqs[i].buf + 64, 0xa5, DATA_SIZE);
            }
            reqs[i].done = false;
            reqs[i].table = 0;
            first[i] = packed_add(&r, alloc, &reqs[i], i, type, sector,
                                  i % 2);
            slots += reqs[i].ndescs;
            /* the chain stays hidden until the whole batch is in the ring */
            first_flags[i] = qtest_readw(global_qtest,
                                         r.vq->desc + first[i] * 16 + 14) ^
                             (DESC_F_AVAIL | DESC_F_USED);
        }
        if (pc->event_idx) {
            /*
             * Once, at a slot this batch does not reach. Not for a batch
             * that takes the used index round the ring: the device then
             * forgets what it signalled and notifies anyway (which the
             * specification allows).
             */
            no_interrupt = round % 4 == 2 &&
                           r.next_used + slots < r.vq->size;
            packed_want_interrupt_after(&r, slots + no_interrupt);
            notifies = packed_notifies(pc);
        }
        for (i = 0; i < PACKED_BATCH; i++) {
            qtest_writew(global_qtest, r.vq->desc + first[i] * 16 + 14,
                         first_flags[i]);
        }
        if (!pc->event_idx || packed_kick_wanted(&r, slots)) {
            dev->bus->virtqueue_kick(dev, r.vq);
        }

        for (i = 0; i < PACKED_BATCH; i++) {
            uint16_t id = packed_wait_used(&r, reqs);

            /* VIRTIO_F_IN_ORDER: used in the order made available */
            if (pc->in_order) {
                g_assert_cmpuint(id, ==, i);
            }

            g_assert_cmpuint(qtest_readb(global_qtest, reqs[id].buf + 16), ==,
                             VIRTIO_BLK_S_OK);
            if (type == VIRTIO_BLK_T_IN) {
                uint64_t sector = packed_sector(pc, base, id);

                qtest_bufread(global_qtest, reqs[id].buf + 64, buf,
                              DATA_SIZE);
                g_assert_cmpmem(buf, DATA_SIZE, expect + sector * SECTOR_SIZE,
                                DATA_SIZE);
            }
        }
        for (i = 0; i < PACKED_BATCH; i++) {
            if (reqs[i].table) {
                guest_free(alloc, reqs[i].table);
            }
        }
        if (pc->event_idx) {
            /*
             * Counted once the device is idle, so that no interrupt can
             * be on its way: one as asked, or none; the first batch may
             * have one more, as a device that has not notified yet does
             * whatever the driver asked.
             */
            int sent;

            packed_wait_rearmed(&r);
            sent = packed_notifies(pc) - notifies;
            if (no_interrupt) {
                g_assert_cmpint(sent, ==, 0);
            } else {
                g_assert_cmpint(sent, >=, 1);
                g_assert_cmpint(sent, <=, round ? 1 : 2);
            }
        }
        if (publish_traced) {
            packed_assert_published_at_once(pc);
        }
    }

    for (i = 0; i < PACKED_BATCH; i++) {
        guest_free(alloc, reqs[i].buf);
    }
    qvirtqueue_cleanup(dev->bus, r.vq, alloc);
    g_free(expect);
    unlink(disk_path);
    g_free(disk_path);
    disk_path = NULL;
    unlink(pc->log);
}

static PackedCase packed_cases[] = {
    { .name = "packed/rw" },
    { .name = "packed/rw-event-idx", .event_idx = true },
    { .name = "packed/rw-iothread", .iothread = true },
    { .name = "packed/rw-iothread-event-idx", .iothread = true,
      .event_idx = true },
    { .name = "packed/rw-iothread-in-order", .iothread = true,
      .in_order = true },
};

static void register_virtio_blk_packed_test(void)
{
    int i;

    for (i = 0; i < ARRAY_SIZE(packed_cases); i++) {
        PackedCase *pc = &packed_cases[i];
        g_autoptr(GString) dev_opts = g_string_new("packed=on");
        QOSGraphTestOptions opts = {
            .before = packed_setup,
            .arg = pc,
        };

        if (pc->in_order) {
            g_string_append(dev_opts, ",in_order=on");
        }
        if (pc->iothread) {
            g_string_append(dev_opts, ",iothread=iothread0");
        }
        opts.edge.extra_device_opts = dev_opts->str;
        qos_add_test(pc->name, "virtio-blk-pci", test_packed_rw, &opts);
    }
}

libqos_init(register_virtio_blk_packed_test);
