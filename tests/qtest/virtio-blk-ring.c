/*
 * Virtqueue accesses the virtio-blk qtests share where libqos has none
 *
 * Ring fields are little-endian: VIRTIO 1.0 devices are little-endian
 * everywhere, and a legacy device, as the tests that drive one check, on
 * a little-endian guest.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"
#include "virtio-blk-ring.h"

#define WAIT_TIMEOUT_US     (30 * 1000 * 1000)
/* between polls of the used ring: QEMU needs the CPU more than we do */
#define WAIT_POLL_US        100

/* Write @d as descriptor @i of the table at @table, whatever it holds. */
void vbr_desc_write(QTestState *qts, uint64_t table, int i, const VBRDesc *d)
{
    uint8_t buf[sizeof(struct vring_desc)];

    stq_le_p(buf, d->addr);
    stl_le_p(buf + 8, d->len);
    stw_le_p(buf + 12, d->flags);
    stw_le_p(buf + 14, d->next);
    qtest_memwrite(qts, table + sizeof(buf) * i, buf, sizeof(buf));
}

/* Chain @n descriptors in @table from index @first (NEXT added here). */
void vbr_chain_write(QTestState *qts, uint64_t table, int first,
                     const VBRDesc *d, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        VBRDesc x = d[i];

        if (i + 1 < n) {
            x.flags |= VRING_DESC_F_NEXT;
            x.next = first + i + 1;
        }
        vbr_desc_write(qts, table, first + i, &x);
    }
}

/*
 * Make @heads available with one avail->idx update, as a driver makes a
 * batch available, then notify the device if it asked to be: with
 * EVENT_IDX when the new entries pass avail_event, else unless
 * VRING_USED_F_NO_NOTIFY is set. Returns whether it notified.
 */
bool vbr_publish(QTestState *qts, QVirtQueue *vq, const uint16_t *heads,
                 int n)
{
    uint16_t old = qtest_readw(qts, vq->avail + 2);
    uint16_t new = old + n;
    g_autofree uint16_t *ring = g_new(uint16_t, MIN(n, vq->size));
    bool kick;
    int i, run;

    for (i = 0; i < n; i += run) {
        uint32_t pos = (uint16_t)(old + i) % vq->size;
        int j;

        run = MIN(n - i, vq->size - pos);
        for (j = 0; j < run; j++) {
            stw_le_p(&ring[j], heads[i + j]);
        }
        qtest_memwrite(qts, vq->avail + 4 + 2 * pos, ring, 2 * run);
    }
    qtest_writew(qts, vq->avail + 2, new);

    /* read after the index is written, as the device reads them before */
    if (vq->event) {
        uint16_t avail_event = qtest_readw(qts, vq->used + 4 +
                                           sizeof(struct vring_used_elem) *
                                           vq->size);

        kick = vring_need_event(avail_event, new, old);
    } else {
        kick = !(qtest_readw(qts, vq->used) & VRING_USED_F_NO_NOTIFY);
    }
    if (kick) {
        vq->vdev->bus->virtqueue_kick(vq->vdev, vq);
    }
    return kick;
}

/*
 * Wait for the next used element of @vq and take it. Returns false if the
 * device gave up instead (virtio_error() sets NEEDS_RESET for VIRTIO 1).
 * With EVENT_IDX, an empty ring sets used_event as an interrupt-driven
 * driver does before it sleeps, so that the device's used_event handling
 * runs as it does for a guest.
 */
bool vbr_wait_used(QTestState *qts, QVirtQueue *vq, uint32_t *head,
                   uint32_t *len)
{
    QVirtioDevice *dev = vq->vdev;
    gint64 start = g_get_monotonic_time();

    while (!qvirtqueue_get_buf(qts, vq, head, len)) {
        if (dev->bus->get_status(dev) & VIRTIO_CONFIG_S_NEEDS_RESET) {
            return false;
        }
        if (vq->event) {
            qvirtqueue_set_used_event(qts, vq, vq->last_used_idx);
        }
        g_assert_cmpint(g_get_monotonic_time() - start, <=, WAIT_TIMEOUT_US);
        g_usleep(WAIT_POLL_US);
    }
    return true;
}

/*
 * The lines of QEMU's trace log @log, for g_strfreev(). A QMP command
 * first, so that what the main loop traced before is in the file.
 */
char **vbr_read_trace(QTestState *qts, const char *log)
{
    g_autofree char *text = NULL;

    qtest_qmp_assert_success(qts, "{ 'execute': 'query-status' }");
    g_assert_true(g_file_get_contents(log, &text, NULL, NULL));
    return g_strsplit(text, "\n", -1);
}

/*
 * If trace log line @line records event @name, its fields ("key value"
 * pairs), else NULL. The log backend starts a line with the event's name,
 * or with "pid@time:" and then the name.
 */
const char *vbr_trace_event(const char *line, const char *name)
{
    const char *colon = strchr(line, ':');
    size_t len = strlen(name);

    if (!strncmp(line, name, len) && line[len] == ' ') {
        return line + len + 1;
    }
    if (colon && !strncmp(colon + 1, name, len) && colon[len + 1] == ' ') {
        return colon + len + 2;
    }
    return NULL;
}

/* The value of field @key in @fields, as vbr_trace_event() found them */
int64_t vbr_trace_field(const char *fields, const char *key)
{
    g_autofree char *pattern = g_strdup_printf(" %s ", key);
    /* the event's name and a space come before the first key */
    const char *at = strstr(fields - 1, pattern);

    return at ? g_ascii_strtoll(at + strlen(pattern), NULL, 10) : -1;
}

/*
 * How many lines of QEMU's trace log @log record event @name, adding their
 * "count" fields to *@sum if @sum is not NULL.
 */
int vbr_count_events(QTestState *qts, const char *log, const char *name,
                     uint64_t *sum)
{
    g_auto(GStrv) lines = vbr_read_trace(qts, log);
    int n = 0, i;

    for (i = 0; lines[i]; i++) {
        const char *fields = vbr_trace_event(lines[i], name);

        if (!fields) {
            continue;
        }
        n++;
        if (sum) {
            *sum += MAX(vbr_trace_field(fields, "count"), 0);
        }
    }
    return n;
}
