/*
 * QTest testcase: hostile guest input to virtio-blk
 *
 * Each case sends the device one malformed or out-of-range request and
 * checks the outcome the virtio specification (or QEMU's documented policy)
 * requires: a status byte (IOERR, UNSUPP) with the disk left unchanged, or,
 * for a ring the device cannot trust, virtio_error(): the device reports
 * NEEDS_RESET, and works again after a reset. QEMU must neither abort nor
 * hang, and must never write outside the disk.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest-single.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "standard-headers/linux/pci_regs.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_pci.h"
#include "standard-headers/linux/virtio_ring.h"
#include "libqos/qgraph.h"
#include "libqos/virtio-blk.h"
#include "libqos/virtio-pci.h"
#include "virtio-blk-ring.h"

#define DISK_SECTORS        2048
#define SECTOR_SIZE         512
#define DISK_SIZE           (DISK_SECTORS * SECTOR_SIZE)
#define SERIAL              "hostile-serial-0123456789"
#define UNMAPPABLE_ADDR     0x7ff000000000ULL    /* far above guest RAM */
#define BIOS_ROM_ADDR       0xfffc0000ULL        /* the pc machine's BIOS */
#define SCRATCH_SIZE        (64 * 1024)          /* Ctx.buf */

typedef struct Disk {
    char *path;
} Disk;

typedef struct Ctx {
    QVirtioDevice *dev;
    QGuestAllocator *alloc;
    QVirtQueue *vq;
    uint64_t buf;               /* scratch guest memory for requests */
} Ctx;

static Disk *disk;

/* Every sector holds its own number, so any misplaced write shows. */
static void disk_pattern(uint8_t *buf)
{
    int i;

    for (i = 0; i < DISK_SECTORS; i++) {
        memset(buf + i * SECTOR_SIZE, i & 0xff, SECTOR_SIZE);
        stl_le_p(buf + i * SECTOR_SIZE, i);
    }
}

static void disk_destroy(void *opaque)
{
    Disk *d = opaque;

    unlink(d->path);
    g_free(d->path);
    g_free(d);
    disk = NULL;
    qos_invalidate_command_line();
}

static void disk_create(GString *cmd_line, const char *drive_opts)
{
    g_autofree uint8_t *data = g_malloc(DISK_SIZE);
    int fd;

    disk = g_new0(Disk, 1);
    fd = g_file_open_tmp("qtest.XXXXXX", &disk->path, NULL);
    g_assert_cmpint(fd, >=, 0);
    disk_pattern(data);
    g_assert_cmpint(write(fd, data, DISK_SIZE), ==, DISK_SIZE);
    close(fd);
    g_test_queue_destroy(disk_destroy, disk);

    g_string_append_printf(cmd_line,
                           " -drive if=none,id=drive0,file=%s,format=raw,"
                           "discard=unmap%s "
                           "-global virtio-blk-device.serial=" SERIAL " ",
                           disk->path, drive_opts);
}

static void *hostile_setup(GString *cmd_line, void *arg)
{
    disk_create(cmd_line, ",auto-read-only=off");
    return arg;
}

static void *hostile_setup_iothread(GString *cmd_line, void *arg)
{
    g_string_append(cmd_line, " -object iothread,id=iothread0 ");
    return hostile_setup(cmd_line, arg);
}

static void *hostile_setup_ro(GString *cmd_line, void *arg)
{
    disk_create(cmd_line, ",readonly=on");
    return arg;
}

/* The image must still hold the pattern, except where @expect says. */
static void disk_check(const uint8_t *expect)
{
    g_autofree uint8_t *pattern = NULL;
    g_autofree uint8_t *file = NULL;
    gsize len;
    int i;

    if (!expect) {
        pattern = g_malloc(DISK_SIZE);
        disk_pattern(pattern);
        expect = pattern;
    }
    g_assert_true(g_file_get_contents(disk->path, (char **)&file, &len,
                                      NULL));
    g_assert_cmpuint(len, ==, DISK_SIZE);
    for (i = 0; i < DISK_SECTORS; i++) {
        if (memcmp(file + i * SECTOR_SIZE, expect + i * SECTOR_SIZE,
                   SECTOR_SIZE)) {
            g_test_message("sector %d of the image changed", i);
            g_assert_not_reached();
        }
    }
}

static void ctx_start(Ctx *c, QVirtioDevice *dev, QGuestAllocator *alloc)
{
    uint64_t features;

    c->dev = dev;
    c->alloc = alloc;
    features = qvirtio_get_features(dev);
    features &= ~(QVIRTIO_F_BAD_FEATURE |
                  (1ull << VIRTIO_RING_F_EVENT_IDX) |
                  (1ull << VIRTIO_BLK_F_SCSI));
    qvirtio_set_features(dev, features);
    c->vq = qvirtqueue_setup(dev, alloc, 0);
    qvirtio_set_driver_ok(dev);
    if (!c->buf) {
        c->buf = guest_alloc(alloc, SCRATCH_SIZE);
    }
}

static void ctx_stop(Ctx *c)
{
    qvirtqueue_cleanup(c->dev->bus, c->vq, c->alloc);
    guest_free(c->alloc, c->buf);
    c->buf = 0;
}

/* Offer @head to the device @times times in one avail->idx update. */
static void avail_offer(Ctx *c, uint16_t head, int times)
{
    g_autofree uint16_t *heads = g_new(uint16_t, times);
    int i;

    for (i = 0; i < times; i++) {
        heads[i] = head;
    }
    vbr_publish(global_qtest, c->vq, heads, times);
}

/* A correct read of sector @sector must work and return the pattern. */
static void check_good_read(Ctx *c, uint64_t sector);

/* After a reset the device must serve requests again, the disk intact. */
static void reset_and_check(Ctx *c)
{
    qvirtqueue_cleanup(c->dev->bus, c->vq, c->alloc);
    qvirtio_start_device(c->dev);
    ctx_start(c, c->dev, c->alloc);
    check_good_read(c, 7);
    disk_check(NULL);
}

/*
 * The device must have rejected the ring with virtio_error(), and QEMU
 * must still answer QMP.
 */
static void expect_broken(Ctx *c)
{
    uint32_t head, len;

    g_assert_false(vbr_wait_used(global_qtest, c->vq, &head, &len));
    qtest_qmp_assert_success(global_qtest, "{ 'execute': 'query-status' }");
    reset_and_check(c);
}

/*
 * Guest buffer layout used by the simple requests:
 *   buf + 0       request header (16 bytes)
 *   buf + 32      status byte
 *   buf + 64      data, unless the request names its own
 */
static uint64_t header_write(Ctx *c, uint32_t type, uint64_t sector)
{
    uint8_t hdr[16];

    stl_le_p(hdr, type);
    stl_le_p(hdr + 4, 0);
    stq_le_p(hdr + 8, sector);
    qtest_bufwrite(global_qtest, c->buf, hdr, sizeof(hdr));
    return c->buf;
}

/*
 * Lay out header, @len bytes of data at @data_addr (device-readable or
 * -writable) and a status byte as a chain of three descriptors (two
 * without data); returns its head.
 */
static uint32_t request_chain(Ctx *c, uint32_t type, uint64_t sector,
                              uint64_t data_addr, uint32_t len, bool data_in)
{
    uint32_t head;

    qtest_writeb(global_qtest, c->buf + 32, 0xff);
    /* one request at a time: the ring's descriptors are all free again */
    qvirtqueue_reset_pool(c->vq);
    head = qvirtqueue_add(global_qtest, c->vq,
                          header_write(c, type, sector), 16, false, true);
    if (len) {
        qvirtqueue_add(global_qtest, c->vq, data_addr, len, data_in, true);
    }
    qvirtqueue_add(global_qtest, c->vq, c->buf + 32, 1, true, false);
    return head;
}

/*
 * Send the request_chain() and return the status the device wrote, after
 * checking the used element.
 */
static uint8_t request_at(Ctx *c, uint32_t type, uint64_t sector,
                          uint64_t data_addr, uint32_t len, bool data_in)
{
    uint32_t first = request_chain(c, type, sector, data_addr, len, data_in);
    uint32_t head, used_len;

    qvirtqueue_kick(global_qtest, c->dev, c->vq, first);
    g_assert_true(vbr_wait_used(global_qtest, c->vq, &head, &used_len));
    g_assert_cmpuint(head, ==, first);
    g_assert_cmpuint(used_len, ==, (data_in ? len : 0) + 1);
    return qtest_readb(global_qtest, c->buf + 32);
}

/* request_at() with the data copied through the scratch buffer. */
static uint8_t request(Ctx *c, uint32_t type, uint64_t sector,
                       void *data, uint32_t len, bool data_in)
{
    uint64_t data_addr = c->buf + 64;
    uint8_t status;

    g_assert_cmpuint(64 + len, <=, SCRATCH_SIZE);
    if (len && !data_in) {
        qtest_bufwrite(global_qtest, data_addr, data, len);
    }
    status = request_at(c, type, sector, data_addr, len, data_in);
    if (len && data_in) {
        qtest_bufread(global_qtest, data_addr, data, len);
    }
    return status;
}

static void check_good_read(Ctx *c, uint64_t sector)
{
    uint8_t got[SECTOR_SIZE] = { 0 };
    uint8_t want[SECTOR_SIZE];

    g_assert_cmpuint(request(c, VIRTIO_BLK_T_IN, sector, got, sizeof(got),
                             true), ==, VIRTIO_BLK_S_OK);
    memset(want, sector & 0xff, sizeof(want));
    stl_le_p(want, sector);
    g_assert_true(memcmp(got, want, sizeof(want)) == 0);
}

/*
 * An address in a case table: an offset into c->buf, or at and above
 * SCRATCH_SIZE a guest-physical address.
 */
static uint64_t ctx_addr(Ctx *c, uint64_t addr)
{
    return addr < SCRATCH_SIZE ? c->buf + addr : addr;
}

/*
 * A request the device cannot parse: a header of @type at c->buf, then a
 * chain of descriptors at ctx_addr() addresses.
 */
typedef struct BrokenChainCase {
    const char *name;
    uint32_t type;
    int n;
    VBRDesc d[3];
} BrokenChainCase;

#define W VRING_DESC_F_WRITE

static const BrokenChainCase broken_chain_cases[] = {
    { "ring/read-after-write", VIRTIO_BLK_T_OUT, 3,
      { { 0, 16 }, { 600, 1, W }, { 64, 512 } } },
    { "ring/zero-length", VIRTIO_BLK_T_IN, 3,
      { { 0, 16 }, { 64, 0, W }, { 600, 1, W } } },
    /*
     * Memory that is not RAM can only be reached through QEMU's bounce
     * buffer (4 KiB by default); a larger buffer there cannot be mapped.
     */
    { "ring/unmappable-buffer", VIRTIO_BLK_T_IN, 3,
      { { 0, 16 }, { UNMAPPABLE_ADDR, 64 * 1024, W }, { 600, 1, W } } },
    /* ROM is RAM, but not writable in place: the same holds for a read */
    { "ring/rom-buffer-over-bounce-limit", VIRTIO_BLK_T_IN, 3,
      { { 0, 16 }, { BIOS_ROM_ADDR, 64 * 1024, W }, { 600, 1, W } } },
    /* the request must hold a header and a status byte */
    { "frame/no-out", VIRTIO_BLK_T_IN, 2, { { 64, 512, W }, { 600, 1, W } } },
    { "frame/no-in", VIRTIO_BLK_T_OUT, 2, { { 0, 16 }, { 64, 512 } } },
    { "frame/short-header", VIRTIO_BLK_T_IN, 3,
      { { 0, 8 }, { 8, 7 }, { 600, 1, W } } },
    { "frame/empty-status", VIRTIO_BLK_T_IN, 2,
      { { 0, 16 }, { 600, 0, W } } },
    /* a discard/write zeroes segment shorter than 16 bytes */
    { "dwz/short-segment", VIRTIO_BLK_T_WRITE_ZEROES, 3,
      { { 0, 16 }, { 64, 8 }, { 128, 1, W } } },
};

#undef W

static void test_broken_chain(void *obj, void *data, QGuestAllocator *alloc)
{
    const BrokenChainCase *bc = data;
    QVirtioBlk *blk = obj;
    VBRDesc d[ARRAY_SIZE(bc->d)];
    Ctx c = { 0 };
    int i;

    ctx_start(&c, blk->vdev, alloc);
    header_write(&c, bc->type, 1);
    for (i = 0; i < bc->n; i++) {
        d[i] = bc->d[i];
        d[i].addr = ctx_addr(&c, d[i].addr);
    }
    vbr_chain_write(global_qtest, c.vq->desc, 0, d, bc->n);
    qvirtqueue_kick(global_qtest, c.dev, c.vq, 0);
    expect_broken(&c);
    ctx_stop(&c);
}

/* --- status cases: one request, a status, the disk unchanged ------------ */

typedef struct StatusCase {
    const char *name;
    uint32_t type;
    uint64_t sector;
    uint32_t len;
    bool data_in;
    uint8_t status;
} StatusCase;

static const StatusCase status_cases[] = {
    /* virtio_blk_sect_range_ok(): the whole range must be on the disk */
    { "range/read-at-capacity", VIRTIO_BLK_T_IN, DISK_SECTORS, 512, true,
      VIRTIO_BLK_S_IOERR },
    { "range/read-past-capacity", VIRTIO_BLK_T_IN, DISK_SECTORS + 8, 512,
      true, VIRTIO_BLK_S_IOERR },
    { "range/read-crossing-end", VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 1024,
      true, VIRTIO_BLK_S_IOERR },
    { "range/write-at-capacity", VIRTIO_BLK_T_OUT, DISK_SECTORS, 512, false,
      VIRTIO_BLK_S_IOERR },
    { "range/write-crossing-end", VIRTIO_BLK_T_OUT, DISK_SECTORS - 1, 1024,
      false, VIRTIO_BLK_S_IOERR },
    { "range/write-sector-wraps", VIRTIO_BLK_T_OUT, UINT64_MAX, 512, false,
      VIRTIO_BLK_S_IOERR },
    /* sector << 9 wraps to byte offset 0: must not write sector 0 */
    { "range/write-offset-wraps", VIRTIO_BLK_T_OUT, 1ULL << 55, 512, false,
      VIRTIO_BLK_S_IOERR },
    { "range/write-len-unaligned", VIRTIO_BLK_T_OUT, 8, 100, false,
      VIRTIO_BLK_S_IOERR },
    { "range/read-len-unaligned", VIRTIO_BLK_T_IN, 8, 1000, true,
      VIRTIO_BLK_S_IOERR },
    /* Request types the device does not offer */
    { "type/unknown", 0x7f, 0, 0, false, VIRTIO_BLK_S_UNSUPP },
    /* too few buffers for the legacy SCSI framing: IOERR, as documented */
    { "type/scsi-cmd", VIRTIO_BLK_T_SCSI_CMD, 0, 0, false,
      VIRTIO_BLK_S_IOERR },
    { "type/get-lifetime", 10, 0, 0, false, VIRTIO_BLK_S_UNSUPP },
    { "type/secure-erase", VIRTIO_BLK_T_SECURE_ERASE, 0, 512, false,
      VIRTIO_BLK_S_UNSUPP },
    { "type/zone-append", VIRTIO_BLK_T_ZONE_APPEND, 0, 512, false,
      VIRTIO_BLK_S_UNSUPP },
    { "type/zone-report", VIRTIO_BLK_T_ZONE_REPORT, 0, 4096, true,
      VIRTIO_BLK_S_UNSUPP },
    { "type/zone-open", VIRTIO_BLK_T_ZONE_OPEN, 0, 0, false,
      VIRTIO_BLK_S_UNSUPP },
    { "type/zone-reset-all", VIRTIO_BLK_T_ZONE_RESET_ALL, 0, 0, false,
      VIRTIO_BLK_S_UNSUPP },
    { "type/flush", VIRTIO_BLK_T_FLUSH, 0, 0, false, VIRTIO_BLK_S_OK },
    /* legacy FLUSH_OUT: the OUT bit only gives the direction */
    { "type/flush-legacy-out", VIRTIO_BLK_T_FLUSH | VIRTIO_BLK_T_OUT, 0, 0,
      false, VIRTIO_BLK_S_OK },
    /* BARRIER was never negotiable; QEMU has always ignored it */
    { "type/read-barrier", VIRTIO_BLK_T_IN | VIRTIO_BLK_T_BARRIER, 9, 512,
      true, VIRTIO_BLK_S_OK },
};

static void test_status_case(void *obj, void *data, QGuestAllocator *alloc)
{
    const StatusCase *sc = data;
    QVirtioBlk *blk = obj;
    g_autofree uint8_t *buf = g_malloc0(MAX(sc->len, 1));
    Ctx c = { 0 };

    ctx_start(&c, blk->vdev, alloc);
    g_assert_cmpuint(request(&c, sc->type, sc->sector, buf, sc->len,
                             sc->data_in), ==, sc->status);
    disk_check(NULL);
    check_good_read(&c, 0);
    ctx_stop(&c);
}

/* --- discard and write zeroes ------------------------------------------- */

typedef struct DwzCase {
    const char *name;
    uint32_t type;
    int nsegs;
    uint32_t seg_len;           /* bytes per segment (16 when well formed) */
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
    uint8_t status;
} DwzCase;

#define D VIRTIO_BLK_T_DISCARD
#define WZ VIRTIO_BLK_T_WRITE_ZEROES
#define UNMAP VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP

static const DwzCase dwz_cases[] = {
    /* num_sectors above max-discard-sectors / max-write-zeroes-sectors */
    { "dwz/discard-all-ones", D, 1, 16, 0, 0xffffffff, 0,
      VIRTIO_BLK_S_IOERR },
    { "dwz/write-zeroes-all-ones", WZ, 1, 16, 0, 0xffffffff, 0,
      VIRTIO_BLK_S_IOERR },
    { "dwz/discard-past-capacity", D, 1, 16, DISK_SECTORS - 1, 2, 0,
      VIRTIO_BLK_S_IOERR },
    { "dwz/write-zeroes-past-capacity", WZ, 1, 16, DISK_SECTORS, 1, 0,
      VIRTIO_BLK_S_IOERR },
    { "dwz/discard-sector-wraps", D, 1, 16, UINT64_MAX, 1, 0,
      VIRTIO_BLK_S_IOERR },
    /* "MUST set the status byte to VIRTIO_BLK_S_UNSUPP ... unknown flag" */
    { "dwz/discard-reserved-flag", D, 1, 16, 0, 1, 0x2, VIRTIO_BLK_S_UNSUPP },
    { "dwz/write-zeroes-reserved-flag", WZ, 1, 16, 0, 1, 0x80000000,
      VIRTIO_BLK_S_UNSUPP },
    /* "... for discard commands if the unmap flag is set" */
    { "dwz/discard-unmap", D, 1, 16, 0, 1, UNMAP, VIRTIO_BLK_S_UNSUPP },
    /* QEMU takes one segment per request (max_discard_seg = 1) */
    { "dwz/discard-two-segments", D, 2, 16, 0, 1, 0, VIRTIO_BLK_S_UNSUPP },
    { "dwz/write-zeroes-two-segments", WZ, 2, 16, 0, 1, 0,
      VIRTIO_BLK_S_UNSUPP },
    /* the OUT bit is part of these request types */
    { "dwz/discard-without-out-bit", D & ~VIRTIO_BLK_T_OUT, 1, 16, 0, 1, 0,
      VIRTIO_BLK_S_UNSUPP },
    { "dwz/write-zeroes-without-out-bit", WZ & ~VIRTIO_BLK_T_OUT, 1, 16, 0,
      1, 0, VIRTIO_BLK_S_UNSUPP },
    { "dwz/write-zeroes-empty", WZ, 1, 16, 5, 0, 0, VIRTIO_BLK_S_OK },
};

static void dwz_segments(uint8_t *buf, const DwzCase *dc)
{
    int i;

    for (i = 0; i < dc->nsegs; i++) {
        stq_le_p(buf + 16 * i, dc->sector);
        stl_le_p(buf + 16 * i + 8, dc->num_sectors);
        stl_le_p(buf + 16 * i + 12, dc->flags);
    }
}

static void test_dwz_case(void *obj, void *data, QGuestAllocator *alloc)
{
    const DwzCase *dc = data;
    QVirtioBlk *blk = obj;
    uint8_t seg[32];
    Ctx c = { 0 };

    ctx_start(&c, blk->vdev, alloc);
    dwz_segments(seg, dc);
    g_assert_cmpuint(request(&c, dc->type, 0, seg, dc->nsegs * dc->seg_len,
                             false), ==, dc->status);
    disk_check(NULL);
    check_good_read(&c, 0);
    ctx_stop(&c);
}

/* Write zeroes over a range: zeroes there, nothing else touched. */
static void test_dwz_write_zeroes_ok(void *obj, void *data,
                                     QGuestAllocator *alloc)
{
    const DwzCase dc = { NULL, WZ, 1, 16, 100, 3, 0, VIRTIO_BLK_S_OK };
    QVirtioBlk *blk = obj;
    g_autofree uint8_t *expect = g_malloc(DISK_SIZE);
    uint8_t seg[16];
    Ctx c = { 0 };

    ctx_start(&c, blk->vdev, alloc);
    dwz_segments(seg, &dc);
    g_assert_cmpuint(request(&c, WZ, 0, seg, 16, false), ==,
                     VIRTIO_BLK_S_OK);
    disk_pattern(expect);
    memset(expect + 100 * SECTOR_SIZE, 0, 3 * SECTOR_SIZE);
    disk_check(expect);
    ctx_stop(&c);
}

/* --- read-only device: every modifying request fails with IOERR ------- */

static const StatusCase ro_cases[] = {
    { "ro/write", VIRTIO_BLK_T_OUT, 0, 512, false, VIRTIO_BLK_S_IOERR },
    { "ro/write-zeroes", WZ, 0, 0, false, VIRTIO_BLK_S_IOERR },
    { "ro/discard", D, 0, 0, false, VIRTIO_BLK_S_IOERR },
    { "ro/read", VIRTIO_BLK_T_IN, 3, 512, true, VIRTIO_BLK_S_OK },
};

static void test_ro_case(void *obj, void *data, QGuestAllocator *alloc)
{
    const StatusCase *sc = data;
    QVirtioBlk *blk = obj;
    uint8_t buf[512] = { 0 };
    uint32_t len = sc->len;
    Ctx c = { 0 };

    ctx_start(&c, blk->vdev, alloc);
    if (sc->type == D || sc->type == WZ) {
        const DwzCase dc = { NULL, sc->type, 1, 16, 10, 2 };

        dwz_segments(buf, &dc);
        len = 16;
    }
    g_assert_cmpuint(request(&c, sc->type, sc->sector, buf, len,
                             sc->data_in), ==, sc->status);
    disk_check(NULL);
    ctx_stop(&c);
}

#undef D
#undef WZ
#undef UNMAP

/* --- GET_ID: at most 20 bytes, NUL only when the serial is shorter --- */

static void test_get_id(void *obj, void *data, QGuestAllocator *alloc)
{
    uint32_t size = GPOINTER_TO_UINT(data);
    QVirtioBlk *blk = obj;
    uint8_t got[64];
    uint8_t want[64];
    Ctx c = { 0 };

    ctx_start(&c, blk->vdev, alloc);
    memset(got, 0xaa, sizeof(got));
    qtest_bufwrite(global_qtest, c.buf + 64, got, size);
    g_assert_cmpuint(request(&c, VIRTIO_BLK_T_GET_ID, 0, got, size, true),
                     ==, VIRTIO_BLK_S_OK);
    memset(want, 0xaa, sizeof(want));
    memcpy(want, SERIAL, MIN(size, VIRTIO_BLK_ID_BYTES));
    g_assert_true(memcmp(got, want, size) == 0);
    ctx_stop(&c);
}

/* --- rings the device cannot trust: virtio_error, then a reset -------- */

static uint64_t read_header(Ctx *c)
{
    return header_write(c, VIRTIO_BLK_T_IN, 1);
}

/* "Guest moved avail index" by more than the queue size */
static void test_ring_avail_idx_ahead(void *obj, void *data,
                                      QGuestAllocator *alloc)
{
    QVirtioBlk *blk = obj;
    Ctx c = { 0 };

    ctx_start(&c, blk->vdev, alloc);
    qtest_writew(global_qtest, c.vq->avail + 2, c.vq->size + 1);
    c.dev->bus->virtqueue_kick(c.dev, c.vq);
    expect_broken(&c);
    ctx_stop(&c);
}

/* Limit drive0 to @iops requests per second, 0: no limit */
static void drive_throttle(int iops)
{
    qtest_qmp_assert_success(global_qtest,
                             "{ 'execute': 'block_set_io_throttle',"
                             "  'arguments': { 'device': 'drive0',"
                             "    'iops': %d, 'iops_rd': 0, 'iops_wr': 0,"
                             "    'bps': 0, 'bps_rd': 0, 'bps_wr': 0 } }",
                             iops);
}

/*
 * More buffers in flight than the ring has entries (CVE-2016-5403): the
 * guest offers one read a full ring of times, which an I/O throttle holds
 * (under qtest it runs on the virtual clock, so nothing but a drain
 * releases it), then offers it twice more. At most one request gets
 * through the throttle, so the device must find itself holding a full
 * ring and refuse the ring, not pop past it.
 */
static void test_ring_inuse_exceeds_size(void *obj, void *data,
                                         QGuestAllocator *alloc)
{
    QVirtioBlk *blk = obj;
    Ctx c = { 0 };
    uint32_t first, head, len;
    int used;

    ctx_start(&c, blk->vdev, alloc);
    first = request_chain(&c, VIRTIO_BLK_T_IN, 1, c.buf + 64, SECTOR_SIZE,
                          true);
    drive_throttle(1);
    avail_offer(&c, first, c.vq->size);
    avail_offer(&c, first, 2);
    for (used = 0; vbr_wait_used(global_qtest, c.vq, &head, &len); used++) {
        g_assert_cmpint(used, <, 1);
        g_assert_cmpuint(head, ==, first);
    }
    /* no limit, so that the held reads and those after the reset complete */
    drive_throttle(0);
    reset_and_check(&c);
    ctx_stop(&c);
}

static void test_ring_head_out_of_range(void *obj, void *data,
                                        QGuestAllocator *alloc)
{
    QVirtioBlk *blk = obj;
    Ctx c = { 0 };

    ctx_start(&c, blk->vdev, alloc);
    qvirtqueue_kick(global_qtest, c.dev, c.vq, c.vq->size);
    expect_broken(&c);
    ctx_stop(&c);
}

static void test_ring_next_out_of_range(void *obj, void *data,
                                        QGuestAllocator *alloc)
{
    QVirtioBlk *blk = obj;
    Ctx c = { 0 };

    ctx_start(&c, blk->vdev, alloc);
    vbr_desc_write(global_qtest, c.vq->desc, 0,
                   &(VBRDesc) { read_header(&c), 16, VRING_DESC_F_NEXT,
                                c.vq->size });
    qvirtqueue_kick(global_qtest, c.dev, c.vq, 0);
    expect_broken(&c);
    ctx_stop(&c);
}

static void test_ring_loop(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioBlk *blk = obj;
    uint64_t hdr;
    Ctx c = { 0 };

    ctx_start(&c, blk->vdev, alloc);
    hdr = read_header(&c);
    vbr_desc_write(global_qtest, c.vq->desc, 0,
                   &(VBRDesc) { hdr, 16, VRING_DESC_F_NEXT, 1 });
    vbr_desc_write(global_qtest, c.vq->desc, 1,
                   &(VBRDesc) { c.buf + 64, 512,
                                VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0 });
    qvirtqueue_kick(global_qtest, c.dev, c.vq, 0);
    expect_broken(&c);
    ctx_stop(&c);
}

static void test_ring_indirect_bad(Ctx *c, uint64_t table, uint32_t len)
{
    vbr_desc_write(global_qtest, c->vq->desc, 0,
                   &(VBRDesc) { table, len, VRING_DESC_F_INDIRECT });
    qvirtqueue_kick(global_qtest, c->dev, c->vq, 0);
    expect_broken(c);
}

/* An indirect table the device cannot use, at a ctx_addr() address */
typedef struct BadIndirectCase {
    const char *name;
    uint64_t table;
    uint32_t len;
} BadIndirectCase;

static const BadIndirectCase bad_indirect_cases[] = {
    { "ring/indirect-len-zero", 4096, 0 },
    { "ring/indirect-len-unaligned", 4096, 40 },
    { "ring/indirect-unmappable", UNMAPPABLE_ADDR, 48 },
};

static void test_bad_indirect(void *obj, void *data, QGuestAllocator *alloc)
{
    const BadIndirectCase *bc = data;
    QVirtioBlk *blk = obj;
    Ctx c = { 0 };

    ctx_start(&c, blk->vdev, alloc);
    test_ring_indirect_bad(&c, ctx_addr(&c, bc->table), bc->len);
    ctx_stop(&c);
}

/* A chain inside an indirect table that loops back on itself */
static void test_ring_indirect_loop(void *obj, void *data,
                                    QGuestAllocator *alloc)
{
    QVirtioBlk *blk = obj;
    uint64_t table;
    Ctx c = { 0 };

    ctx_start(&c, blk->vdev, alloc);
    table = c.buf + 4096;
    vbr_desc_write(global_qtest, table, 0,
                   &(VBRDesc) { read_header(&c), 16, VRING_DESC_F_NEXT, 1 });
    vbr_desc_write(global_qtest, table, 1,
                   &(VBRDesc) { c.buf + 64, 512,
                                VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0 });
    test_ring_indirect_bad(&c, table, 32);
    ctx_stop(&c);
}

/* More buffers than a request may have (VIRTQUEUE_MAX_SIZE = 1024) */
static void test_ring_too_many_segments(void *obj, void *data,
                                        QGuestAllocator *alloc)
{
    const int n = 1100;
    QVirtioBlk *blk = obj;
    uint64_t table;
    Ctx c = { 0 };
    int i;

    ctx_start(&c, blk->vdev, alloc);
    table = guest_alloc(alloc, 16 * n);
    vbr_desc_write(global_qtest, table, 0,
                   &(VBRDesc) { read_header(&c), 16, VRING_DESC_F_NEXT, 1 });
    for (i = 1; i < n; i++) {
        vbr_desc_write(global_qtest, table, i,
                       &(VBRDesc) { c.buf + 64 + i, 1,
                                    VRING_DESC_F_WRITE |
                                    (i + 1 < n ? VRING_DESC_F_NEXT : 0),
                                    i + 1 });
    }
    test_ring_indirect_bad(&c, table, 16 * n);
    guest_free(alloc, table);
    ctx_stop(&c);
}

/* --- framing: the request must hold a header and a status byte -------- */

/* --- size beyond what the block layer takes: IOERR, not a crash ------- */

/*
 * 257 descriptors of 8 MiB each, all on the same guest buffer: 2 GiB of
 * write data, more than BDRV_REQUEST_MAX_BYTES.
 */
static void test_range_too_large(void *obj, void *data,
                                 QGuestAllocator *alloc)
{
    const int nbufs = 257;
    const uint32_t buf_len = 8 * 1024 * 1024;
    QVirtioBlk *blk = obj;
    uint64_t table, big;
    uint32_t head, len;
    Ctx c = { 0 };
    int i;

    ctx_start(&c, blk->vdev, alloc);
    big = guest_alloc(alloc, buf_len);
    table = guest_alloc(alloc, 16 * (nbufs + 2));
    /* more entries than the ring: libqos's indirect tables cannot */
    vbr_desc_write(global_qtest, table, 0,
                   &(VBRDesc) { header_write(&c, VIRTIO_BLK_T_OUT, 0), 16,
                                VRING_DESC_F_NEXT, 1 });
    for (i = 1; i <= nbufs; i++) {
        vbr_desc_write(global_qtest, table, i,
                       &(VBRDesc) { big, buf_len, VRING_DESC_F_NEXT, i + 1 });
    }
    qtest_writeb(global_qtest, c.buf + 600, 0xff);
    vbr_desc_write(global_qtest, table, nbufs + 1,
                   &(VBRDesc) { c.buf + 600, 1, VRING_DESC_F_WRITE });
    vbr_desc_write(global_qtest, c.vq->desc, 0,
                   &(VBRDesc) { table, 16 * (nbufs + 2),
                                VRING_DESC_F_INDIRECT });
    qvirtqueue_kick(global_qtest, c.dev, c.vq, 0);
    g_assert_true(vbr_wait_used(global_qtest, c.vq, &head, &len));
    g_assert_cmpuint(qtest_readb(global_qtest, c.buf + 600), ==,
                     VIRTIO_BLK_S_IOERR);
    disk_check(NULL);
    guest_free(alloc, table);
    guest_free(alloc, big);
    ctx_stop(&c);
}

/* --- more sequential writes in one kick than one merge takes --------- */

static void test_merge_many_writes(void *obj, void *data,
                                   QGuestAllocator *alloc)
{
    const int n = 64;
    QVirtioBlk *blk = obj;
    g_autofree uint8_t *expect = g_malloc(DISK_SIZE);
    g_autofree bool *seen = g_new0(bool, n);
    g_autofree uint16_t *heads = g_new(uint16_t, n);
    uint64_t area;
    uint32_t head, len;
    Ctx c = { 0 };
    int i;

    ctx_start(&c, blk->vdev, alloc);
    disk_pattern(expect);
    area = guest_alloc(alloc, n * (64 + 4096));
    for (i = 0; i < n; i++) {
        uint64_t hdr = area + i * (64 + 4096);
        uint8_t h[16];

        stl_le_p(h, VIRTIO_BLK_T_OUT);
        stl_le_p(h + 4, 0);
        stq_le_p(h + 8, 200 + 8 * i);
        qtest_bufwrite(global_qtest, hdr, h, sizeof(h));
        memset(expect + (200 + 8 * i) * SECTOR_SIZE, 0x40 + i, 4096);
        qtest_memset(global_qtest, hdr + 64, 0x40 + i, 4096);
        qtest_writeb(global_qtest, hdr + 32, 0xff);
        heads[i] = qvirtqueue_add(global_qtest, c.vq, hdr, 16, false, true);
        g_assert_cmpuint(heads[i], ==, 3 * i);
        qvirtqueue_add(global_qtest, c.vq, hdr + 64, 4096, false, true);
        qvirtqueue_add(global_qtest, c.vq, hdr + 32, 1, true, false);
    }
    vbr_publish(global_qtest, c.vq, heads, n);

    for (i = 0; i < n; i++) {
        g_assert_true(vbr_wait_used(global_qtest, c.vq, &head, &len));
        g_assert_cmpuint(head % 3, ==, 0);
        g_assert_cmpuint(head / 3, <, n);
        g_assert_false(seen[head / 3]);
        seen[head / 3] = true;
        g_assert_cmpuint(qtest_readb(global_qtest,
                                     area + head / 3 * (64 + 4096) + 32),
                         ==, VIRTIO_BLK_S_OK);
    }
    disk_check(expect);
    guest_free(alloc, area);
    ctx_stop(&c);
}

/*
 * --- DMA into the device's own registers (CVE-2024-3446 class) -------
 *
 * A read whose data buffer is the device's own MMIO BAR would make the
 * completion write into the registers; into the common configuration it
 * resets the device from inside its own completion (stock QEMU hangs in
 * blk_drain(), or aborts with an iothread). A ring placed over the
 * registers gets the device's used-ring updates, and feeds it descriptors
 * and indices read from them. Buffers and rings must be guest memory: the
 * device marks itself broken, QEMU keeps answering QMP, and the device
 * works again after a reset.
 */
typedef enum DmaTarget {
    TARGET_BUFFER,
    TARGET_DESC,
    TARGET_AVAIL,
    TARGET_USED,
    TARGET__MAX,
} DmaTarget;

static const char *const dma_target_names[TARGET__MAX] = {
    [TARGET_BUFFER] = "buffer",
    [TARGET_DESC] = "desc-ring",
    [TARGET_AVAIL] = "avail-ring",
    [TARGET_USED] = "used-ring",
};

#define REGION(name, field) { name, offsetof(QVirtioPCIDevice, field) }

static const struct RegisterBlock {
    const char *name;
    size_t offset;      /* of the block's offset field in QVirtioPCIDevice */
} register_blocks[] = {
    REGION("common-cfg", common_cfg_offset),
    REGION("isr", isr_cfg_offset),
    REGION("notify", notify_cfg_offset),
    REGION("device-cfg", device_cfg_offset),
};

#undef REGION

typedef struct ReentrancyCase {
    DmaTarget target;
    const struct RegisterBlock *block;
} ReentrancyCase;

static ReentrancyCase reentrancy_cases[TARGET__MAX]
                                      [ARRAY_SIZE(register_blocks)];

/*
 * Small enough for every ring to fit in one register block: a 256-entry
 * descriptor table or used ring would not, and would fail to map for that
 * reason alone.
 */
#define MOVED_RING_SIZE     16

/*
 * Point ring @target of @c's queue at @addr, shrink the queue to
 * MOVED_RING_SIZE and enable it again. The driver-side rings stay where
 * they are, larger than needed.
 */
static void ring_move(Ctx *c, QVirtioPCIDevice *pdev, DmaTarget target,
                      uint64_t addr)
{
    QVirtQueue ring = *c->vq;

    switch (target) {
    case TARGET_DESC:
        ring.desc = addr;
        break;
    case TARGET_AVAIL:
        ring.avail = addr;
        break;
    case TARGET_USED:
        ring.used = addr;
        break;
    default:
        g_assert_not_reached();
    }
    c->dev->bus->queue_select(c->dev, c->vq->index);
    qpci_io_writew(pdev->pdev, pdev->bar, pdev->common_cfg_offset +
                   offsetof(struct virtio_pci_common_cfg, queue_size),
                   MOVED_RING_SIZE);
    c->dev->bus->set_queue_address(c->dev, &ring);
    qpci_io_writew(pdev->pdev, pdev->bar, pdev->common_cfg_offset +
                   offsetof(struct virtio_pci_common_cfg, queue_enable), 1);
}

static void test_reentrancy(void *obj, void *data, QGuestAllocator *alloc)
{
    const ReentrancyCase *rc = data;
    QVirtioPCIDevice *pdev = obj;
    uint64_t regs = pdev->bar.addr +
                    *(uint32_t *)((char *)pdev + rc->block->offset);
    Ctx c = { 0 };

    g_assert_false(pdev->bar.is_io);
    ctx_start(&c, &pdev->vdev, alloc);
    if (rc->target != TARGET_BUFFER) {
        ring_move(&c, pdev, rc->target, regs);
    }
    /* sector 0 holds zeros: written to device_status, they reset */
    qvirtqueue_kick(global_qtest, c.dev, c.vq,
                    request_chain(&c, VIRTIO_BLK_T_IN, 0,
                                  rc->target == TARGET_BUFFER ? regs
                                                              : c.buf + 64,
                                  512, true));
    expect_broken(&c);
    ctx_stop(&c);
}

/* Every target in every register block, with and without an iothread. */
static void add_reentrancy_tests(QOSGraphTestOptions *opts)
{
    int t, b, iothread;

    for (t = 0; t < TARGET__MAX; t++) {
        for (b = 0; b < ARRAY_SIZE(register_blocks); b++) {
            ReentrancyCase *rc = &reentrancy_cases[t][b];

            *rc = (ReentrancyCase) { t, &register_blocks[b] };
            for (iothread = 0; iothread <= 1; iothread++) {
                g_autofree char *name =
                    g_strdup_printf("reentrancy/%s-in-%s%s",
                                    dma_target_names[t],
                                    register_blocks[b].name,
                                    iothread ? "-iothread" : "");

                opts->arg = rc;
                opts->before = iothread ? hostile_setup_iothread
                                        : hostile_setup;
                opts->edge.extra_device_opts = iothread ?
                                               "iothread=iothread0" : NULL;
                qos_add_test(name, "virtio-blk-pci", test_reentrancy, opts);
            }
        }
    }
    opts->edge.extra_device_opts = NULL;
}

/*
 * --- Buffers in memory that is not plain RAM ---------------------------
 *
 * What stays a valid buffer under the guest-memory rule: ROM (reads of
 * it; writes into it are dropped, as a CPU's are) and another device's
 * RAM-backed BAR. A BAR of registers, such as an NVMe controller memory
 * buffer (MMIO in QEMU), is refused like the device's own registers.
 */
#define OTHER_SLOT          0x1e        /* the extra device's PCI slot */

static void *hostile_setup_ram_bar(GString *cmd_line, void *arg)
{
    g_string_append_printf(cmd_line,
                           " -object memory-backend-ram,id=bar-mem,size=64K"
                           " -device ivshmem-plain,memdev=bar-mem,addr=0x%x ",
                           OTHER_SLOT);
    return hostile_setup(cmd_line, arg);
}

static void *hostile_setup_nvme_cmb(GString *cmd_line, void *arg)
{
    g_string_append_printf(cmd_line,
                           " -device nvme,serial=cmb,cmb_size_mb=1,addr=0x%x ",
                           OTHER_SLOT);
    return hostile_setup(cmd_line, arg);
}

/* Map BAR 2 of the device in OTHER_SLOT; returns its guest address. */
static uint64_t other_bar_map(QVirtioPCIDevice *pdev)
{
    g_autofree QPCIDevice *other =
        qpci_device_find(pdev->pdev->bus, QPCI_DEVFN(OTHER_SLOT, 0));
    QPCIBar bar;

    g_assert_nonnull(other);
    bar = qpci_iomap(other, 2, NULL);
    qpci_device_enable(other);
    g_assert_false(bar.is_io);
    return bar.addr;
}

static void test_region_rom(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    g_autofree uint8_t *expect = g_malloc(DISK_SIZE);
    uint8_t rom[SECTOR_SIZE], after[SECTOR_SIZE];
    Ctx c = { 0 };

    ctx_start(&c, &pdev->vdev, alloc);
    qtest_memread(global_qtest, BIOS_ROM_ADDR, rom, sizeof(rom));
    disk_pattern(expect);
    memcpy(expect + 5 * SECTOR_SIZE, rom, SECTOR_SIZE);

    g_assert_cmpuint(request_at(&c, VIRTIO_BLK_T_OUT, 5, BIOS_ROM_ADDR,
                                SECTOR_SIZE, false), ==, VIRTIO_BLK_S_OK);
    g_assert_cmpuint(request_at(&c, VIRTIO_BLK_T_IN, 7, BIOS_ROM_ADDR,
                                SECTOR_SIZE, true), ==, VIRTIO_BLK_S_OK);
    qtest_memread(global_qtest, BIOS_ROM_ADDR, after, sizeof(after));
    g_assert_cmpmem(after, sizeof(after), rom, sizeof(rom));
    disk_check(expect);
    ctx_stop(&c);
}

static void test_region_ram_bar(void *obj, void *data, QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    g_autofree uint8_t *expect = g_malloc(DISK_SIZE);
    uint64_t bar = other_bar_map(pdev);
    uint8_t buf[SECTOR_SIZE];
    Ctx c = { 0 };
    int i;

    ctx_start(&c, &pdev->vdev, alloc);
    disk_pattern(expect);
    for (i = 0; i < SECTOR_SIZE; i++) {
        buf[i] = 0x5a ^ i;
    }
    memcpy(expect + 9 * SECTOR_SIZE, buf, SECTOR_SIZE);
    qtest_bufwrite(global_qtest, bar, buf, sizeof(buf));

    g_assert_cmpuint(request_at(&c, VIRTIO_BLK_T_OUT, 9, bar, SECTOR_SIZE,
                                false), ==, VIRTIO_BLK_S_OK);
    g_assert_cmpuint(request_at(&c, VIRTIO_BLK_T_IN, 3, bar + SECTOR_SIZE,
                                SECTOR_SIZE, true), ==, VIRTIO_BLK_S_OK);
    qtest_bufread(global_qtest, bar + SECTOR_SIZE, buf, sizeof(buf));
    g_assert_cmpmem(buf, sizeof(buf), expect + 3 * SECTOR_SIZE, SECTOR_SIZE);
    disk_check(expect);
    ctx_stop(&c);
}

/*
 * A buffer in a RAM-backed BAR, then the BAR's memory decoding off: the
 * device must see that the memory map changed (it keeps the RAM it mapped
 * buffers in, to map the next ones faster). The buffer is nowhere now;
 * the RAM behind the BAR must not be written.
 */
static void test_region_ram_bar_unmapped(void *obj, void *data,
                                         QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    g_autofree QPCIDevice *other =
        qpci_device_find(pdev->pdev->bus, QPCI_DEVFN(OTHER_SLOT, 0));
    uint8_t buf[SECTOR_SIZE], after[SECTOR_SIZE];
    uint16_t cmd;
    QPCIBar bar;
    Ctx c = { 0 };

    g_assert_nonnull(other);
    bar = qpci_iomap(other, 2, NULL);
    qpci_device_enable(other);
    ctx_start(&c, &pdev->vdev, alloc);
    memset(buf, 0x77, sizeof(buf));
    qtest_bufwrite(global_qtest, bar.addr, buf, sizeof(buf));
    g_assert_cmpuint(request_at(&c, VIRTIO_BLK_T_IN, 9,
                                bar.addr + SECTOR_SIZE, SECTOR_SIZE, true),
                     ==, VIRTIO_BLK_S_OK);

    cmd = qpci_config_readw(other, PCI_COMMAND);
    qpci_config_writew(other, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY);
    qvirtqueue_kick(global_qtest, c.dev, c.vq,
                    request_chain(&c, VIRTIO_BLK_T_IN, 3, bar.addr,
                                  SECTOR_SIZE, true));
    expect_broken(&c);

    qpci_config_writew(other, PCI_COMMAND, cmd);
    qtest_bufread(global_qtest, bar.addr, after, sizeof(after));
    g_assert_cmpmem(after, sizeof(after), buf, sizeof(buf));
    ctx_stop(&c);
}

/*
 * A read held in flight (by an I/O throttle) while the memory map changes
 * twice: the virtqueue gets new region caches, but the read's buffers were
 * mapped through the old ones, which must live until it completes (under
 * check-asan, a use after free shows). The read then lands where it should.
 */
static void test_region_map_change_in_flight(void *obj, void *data,
                                             QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    g_autofree QPCIDevice *other =
        qpci_device_find(pdev->pdev->bus, QPCI_DEVFN(OTHER_SLOT, 0));
    g_autofree uint8_t *expect = g_malloc(DISK_SIZE);
    uint8_t buf[SECTOR_SIZE];
    uint32_t first, head, len;
    uint16_t cmd;
    Ctx c = { 0 };

    g_assert_nonnull(other);
    qpci_iomap(other, 2, NULL);
    qpci_device_enable(other);
    ctx_start(&c, &pdev->vdev, alloc);
    disk_pattern(expect);

    /* The first read takes what the throttle lets through; the next waits */
    drive_throttle(1);
    g_assert_cmpuint(request_at(&c, VIRTIO_BLK_T_IN, 1, c.buf + 64,
                                SECTOR_SIZE, true), ==, VIRTIO_BLK_S_OK);
    qtest_memset(global_qtest, c.buf + 64, 0, SECTOR_SIZE);
    first = request_chain(&c, VIRTIO_BLK_T_IN, 3, c.buf + 64, SECTOR_SIZE,
                          true);
    qvirtqueue_kick(global_qtest, c.dev, c.vq, first);

    cmd = qpci_config_readw(other, PCI_COMMAND);
    qpci_config_writew(other, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY);
    qpci_config_writew(other, PCI_COMMAND, cmd);
    /* Time for the RCU thread to free the caches nothing holds any more */
    g_usleep(100 * 1000);
    g_assert_false(qvirtqueue_get_buf(global_qtest, c.vq, &head, &len));

    drive_throttle(0);
    g_assert_true(vbr_wait_used(global_qtest, c.vq, &head, &len));
    g_assert_cmpuint(head, ==, first);
    g_assert_cmpuint(len, ==, SECTOR_SIZE + 1);
    g_assert_cmpuint(qtest_readb(global_qtest, c.buf + 32), ==,
                     VIRTIO_BLK_S_OK);
    qtest_memread(global_qtest, c.buf + 64, buf, sizeof(buf));
    g_assert_cmpmem(buf, sizeof(buf), expect + 3 * SECTOR_SIZE, SECTOR_SIZE);
    ctx_stop(&c);
}

static void test_region_nvme_cmb(void *obj, void *data,
                                 QGuestAllocator *alloc)
{
    QVirtioPCIDevice *pdev = obj;
    uint64_t cmb = other_bar_map(pdev);
    Ctx c = { 0 };

    /* the controller memory buffer is there, and holds what is written */
    qtest_writel(global_qtest, cmb, 0x12345678);
    g_assert_cmphex(qtest_readl(global_qtest, cmb), ==, 0x12345678);

    ctx_start(&c, &pdev->vdev, alloc);
    qvirtqueue_kick(global_qtest, c.dev, c.vq,
                    request_chain(&c, VIRTIO_BLK_T_IN, 3, cmb, SECTOR_SIZE,
                                  true));
    expect_broken(&c);
    g_assert_cmphex(qtest_readl(global_qtest, cmb), ==, 0x12345678);
    ctx_stop(&c);
}

static void add_status_tests(const StatusCase *cases, int n,
                             QOSTestFunc fn, QOSGraphTestOptions *opts)
{
    int i;

    for (i = 0; i < n; i++) {
        opts->arg = (void *)&cases[i];
        qos_add_test(cases[i].name, "virtio-blk", fn, opts);
    }
}

static void register_virtio_blk_hostile_test(void)
{
    static const struct {
        const char *name;
        QOSTestFunc fn;
    } plain[] = {
        { "ring/avail-idx-ahead", test_ring_avail_idx_ahead },
        { "ring/head-out-of-range", test_ring_head_out_of_range },
        { "ring/next-out-of-range", test_ring_next_out_of_range },
        { "ring/loop", test_ring_loop },
        { "ring/indirect-loop", test_ring_indirect_loop },
        { "ring/too-many-segments", test_ring_too_many_segments },
        { "ring/inuse-exceeds-size", test_ring_inuse_exceeds_size },
        { "range/too-large", test_range_too_large },
        { "dwz/write-zeroes-ok", test_dwz_write_zeroes_ok },
        { "merge/64-sequential-writes", test_merge_many_writes },
    };
    QOSGraphTestOptions opts = {
        .before = hostile_setup,
    };
    int i;

    for (i = 0; i < ARRAY_SIZE(plain); i++) {
        qos_add_test(plain[i].name, "virtio-blk", plain[i].fn, &opts);
    }
    for (i = 0; i < ARRAY_SIZE(bad_indirect_cases); i++) {
        opts.arg = (void *)&bad_indirect_cases[i];
        qos_add_test(bad_indirect_cases[i].name, "virtio-blk",
                     test_bad_indirect, &opts);
    }
    for (i = 0; i < ARRAY_SIZE(broken_chain_cases); i++) {
        opts.arg = (void *)&broken_chain_cases[i];
        qos_add_test(broken_chain_cases[i].name, "virtio-blk",
                     test_broken_chain, &opts);
    }
    opts.arg = NULL;
    add_status_tests(status_cases, ARRAY_SIZE(status_cases),
                     test_status_case, &opts);
    for (i = 0; i < ARRAY_SIZE(dwz_cases); i++) {
        opts.arg = (void *)&dwz_cases[i];
        qos_add_test(dwz_cases[i].name, "virtio-blk", test_dwz_case, &opts);
    }

    opts.arg = GUINT_TO_POINTER(1);
    qos_add_test("get-id/1-byte", "virtio-blk", test_get_id, &opts);
    opts.arg = GUINT_TO_POINTER(VIRTIO_BLK_ID_BYTES);
    qos_add_test("get-id/20-bytes", "virtio-blk", test_get_id, &opts);
    opts.arg = GUINT_TO_POINTER(64);
    qos_add_test("get-id/64-bytes", "virtio-blk", test_get_id, &opts);

    add_reentrancy_tests(&opts);
    opts.arg = NULL;
    opts.before = hostile_setup;
    qos_add_test("regions/rom", "virtio-blk-pci", test_region_rom, &opts);
    opts.before = hostile_setup_ram_bar;
    qos_add_test("regions/ram-bar-unmapped", "virtio-blk-pci",
                 test_region_ram_bar_unmapped, &opts);
    qos_add_test("regions/ram-bar", "virtio-blk-pci", test_region_ram_bar,
                 &opts);
    qos_add_test("regions/map-change-in-flight", "virtio-blk-pci",
                 test_region_map_change_in_flight, &opts);
    opts.before = hostile_setup_nvme_cmb;
    qos_add_test("regions/nvme-cmb", "virtio-blk-pci", test_region_nvme_cmb,
                 &opts);

    opts.before = hostile_setup_ro;
    add_status_tests(ro_cases, ARRAY_SIZE(ro_cases), test_ro_case, &opts);
}

libqos_init(register_virtio_blk_hostile_test);
