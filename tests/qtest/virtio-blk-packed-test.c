/*
 * QTest testcase for virtio-blk on a packed virtqueue
 *
 * libqos drives split rings only; this is a small packed-ring driver
 * (virtio 1.2, 2.8): writes and reads, each a chain of three descriptors
 * or one indirect table, batches that wrap around the ring, and the data
 * read back compared with what was written.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest-single.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_pci.h"
#include "standard-headers/linux/virtio_ring.h"
#include "libqos/qgraph.h"
#include "libqos/virtio-pci.h"

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

typedef struct PackedReq {
    uint64_t buf;               /* header at 0, status at 16, data at 64 */
    uint64_t table;             /* indirect table, or 0 */
    uint16_t ndescs;            /* ring slots it takes */
    bool done;
} PackedReq;

static char *disk_path;

static void *packed_setup(GString *cmd_line, void *arg)
{
    const char *iothread = arg;
    int fd = g_file_open_tmp("qtest-packed.XXXXXX", &disk_path, NULL);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, PACKED_DISK_SIZE), ==, 0);
    close(fd);
    g_string_append_printf(cmd_line,
                           " -drive if=none,id=drive0,file=%s,format=raw ",
                           disk_path);
    if (iothread) {
        g_string_append_printf(cmd_line, " -object iothread,id=%s ",
                               iothread);
    }
    return arg;
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

static void test_packed_rw(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    uint8_t *expect = g_malloc0(PACKED_DISK_SIZE);
    PackedReq reqs[PACKED_BATCH];
    PackedRing r = { .avail_wrap = true, .used_wrap = true };
    uint64_t features = qvirtio_get_features(dev);
    uint8_t buf[DATA_SIZE];
    int round, i, j;

    g_assert_cmphex(features & (1ull << VIRTIO_F_RING_PACKED), !=, 0);
    features &= ~(QVIRTIO_F_BAD_FEATURE | (1ull << VIRTIO_BLK_F_SCSI) |
                  (1ull << VIRTIO_RING_F_EVENT_IDX));
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

    for (i = 0; i < PACKED_BATCH; i++) {
        reqs[i].buf = guest_alloc(alloc, 64 + DATA_SIZE);
    }

    for (round = 0; round < PACKED_ROUNDS; round++) {
        /* even rounds write, odd rounds read back what was written */
        uint32_t type = round % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
        uint64_t base = (round / 2) * PACKED_BATCH * (DATA_SIZE / SECTOR_SIZE);
        uint16_t first[PACKED_BATCH];
        uint16_t first_flags[PACKED_BATCH];

        for (i = 0; i < PACKED_BATCH; i++) {
            uint64_t sector = base + i * (DATA_SIZE / SECTOR_SIZE);

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
            /* the chain stays hidden until the whole batch is in the ring */
            first_flags[i] = qtest_readw(global_qtest,
                                         r.vq->desc + first[i] * 16 + 14) ^
                             (DESC_F_AVAIL | DESC_F_USED);
        }
        for (i = 0; i < PACKED_BATCH; i++) {
            qtest_writew(global_qtest, r.vq->desc + first[i] * 16 + 14,
                         first_flags[i]);
        }
        dev->bus->virtqueue_kick(dev, r.vq);

        for (i = 0; i < PACKED_BATCH; i++) {
            uint16_t id = packed_wait_used(&r, reqs);

            g_assert_cmpuint(qtest_readb(global_qtest, reqs[id].buf + 16), ==,
                             VIRTIO_BLK_S_OK);
            if (type == VIRTIO_BLK_T_IN) {
                uint64_t sector = base + id * (DATA_SIZE / SECTOR_SIZE);

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
    }

    for (i = 0; i < PACKED_BATCH; i++) {
        guest_free(alloc, reqs[i].buf);
    }
    qvirtqueue_cleanup(dev->bus, r.vq, alloc);
    g_free(expect);
    unlink(disk_path);
    g_free(disk_path);
    disk_path = NULL;
}

static void register_virtio_blk_packed_test(void)
{
    QOSGraphTestOptions opts = {
        .before = packed_setup,
        .edge.extra_device_opts = "packed=on",
    };

    qos_add_test("packed/rw", "virtio-blk-pci", test_packed_rw, &opts);
    opts.edge.extra_device_opts = "packed=on,iothread=iothread0";
    opts.arg = (void *)"iothread0";
    qos_add_test("packed/rw-iothread", "virtio-blk-pci", test_packed_rw,
                 &opts);
}

libqos_init(register_virtio_blk_packed_test);
