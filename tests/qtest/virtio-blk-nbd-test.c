/*
 * virtio-blk over NBD: the export's server dies and comes back under I/O
 *
 * The drive is an NBD client (block/nbd.c) of a qemu-storage-daemon that
 * exports the model's image on a Unix socket, as hosts with shared
 * storage run it. The server is killed with writes on their way and
 * started again; with reconnect-delay the writes wait and then complete,
 * without it they fail at once and the drive's werror policy decides:
 * "report" completes them with IOERR and the image keeps what it had,
 * "stop" holds them until `cont` once the client is back. In every case
 * the image ends up holding exactly the model: no write lost, none
 * applied that the guest was told failed.
 *
 * Copyright (c) 2026 The QEMU fork authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/un.h>
#ifdef CONFIG_LINUX
#include <sys/prctl.h>
#endif
#include "libqtest-single.h"
#include "qobject/qdict.h"
#include "qobject/qstring.h"
#include "libqos/qgraph.h"
#include "libqos/virtio-pci.h"
#include "standard-headers/linux/virtio_blk.h"
#include "virtio-blk-model.h"
#include "virtio-blk-ring.h"

#define NBD_REQS            16
#define NBD_REQ_SECTORS     8
#define NBD_SECTOR          2048
/* room around the writes; the whole disk is read back after each case */
#define NBD_DISK_SIZE       (4 * 1024 * 1024)

typedef struct NbdCase {
    const char *policy;         /* werror= */
    int reconnect_delay;        /* seconds; 0: fail at once while down */
} NbdCase;

static ModelDisk *disk;
static char *nbd_socket;
static GPid nbd_server_pid;

static void nbd_server_die_with_test(gpointer unused)
{
#ifdef CONFIG_LINUX
    /* No server left behind by a test that aborts */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
}

static bool nbd_server_listening(void)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    bool ok;

    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(addr.sun_path, nbd_socket, sizeof(addr.sun_path));
    ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    close(fd);
    return ok;
}

/*
 * Start QTEST_QEMU_STORAGE_DAEMON_BINARY, by default the daemon built
 * next to QTEST_QEMU_BINARY, exporting the model's image on nbd_socket,
 * and wait until it listens.
 */
static void nbd_server_start(void)
{
    const char *env = g_getenv("QTEST_QEMU_STORAGE_DAEMON_BINARY");
    g_autofree char *dir = g_path_get_dirname(g_getenv("QTEST_QEMU_BINARY"));
    g_autofree char *qsd = env ? g_strdup(env) :
        g_build_filename(dir, "storage-daemon", "qemu-storage-daemon", NULL);
    g_autofree char *blockdev = g_strdup_printf(
        "driver=file,node-name=disk,filename=%s", disk->path);
    g_autofree char *server = g_strdup_printf(
        "addr.type=unix,addr.path=%s", nbd_socket);
    char *argv[] = {
        qsd, (char *)"--blockdev", blockdev, (char *)"--nbd-server", server,
        (char *)"--export", (char *)"type=nbd,id=exp0,node-name=disk,"
        "name=disk,writable=on", NULL,
    };
    g_autoptr(GError) err = NULL;
    gint64 start = g_get_monotonic_time();

    g_assert_true(g_spawn_async(NULL, argv, NULL,
                                G_SPAWN_DO_NOT_REAP_CHILD |
                                G_SPAWN_STDOUT_TO_DEV_NULL,
                                nbd_server_die_with_test, NULL,
                                &nbd_server_pid, &err));
    while (!nbd_server_listening()) {
        g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
        g_usleep(10 * 1000);
    }
}

static void nbd_server_kill(void)
{
    int status;

    g_assert_cmpint(kill(nbd_server_pid, SIGKILL), ==, 0);
    g_assert_cmpint(waitpid(nbd_server_pid, &status, 0), ==, nbd_server_pid);
    g_spawn_close_pid(nbd_server_pid);
    nbd_server_pid = 0;
}

static void nbd_teardown(void *opaque)
{
    if (nbd_server_pid) {
        nbd_server_kill();
    }
    unlink(nbd_socket);
    g_free(nbd_socket);
    nbd_socket = NULL;
}

static void *nbd_setup(GString *cmd_line, void *arg)
{
    const NbdCase *nc = arg;

    model_disk_create(&disk, NBD_DISK_SIZE);
    nbd_socket = g_strdup_printf("%s/qtest-nbd-%d.sock", g_get_tmp_dir(),
                                 getpid());
    g_test_queue_destroy(nbd_teardown, NULL);
    nbd_server_start();
    g_string_append_printf(cmd_line,
                           " -drive if=none,id=drive0,format=raw,werror=%s,"
                           "file.driver=nbd,file.server.type=unix,"
                           "file.server.path=%s,file.export=disk,"
                           "file.reconnect-delay=%d ",
                           nc->policy, nbd_socket, nc->reconnect_delay);
    return arg;
}

/*
 * Wait until the client is connected again, seen as the guest sees it: a
 * read of sector 0 completes with OK, not IOERR (rerror=report). The
 * client retries in the background, after 1, 2, 4... seconds.
 */
static void nbd_wait_reconnected(QVirtioDevice *dev, QGuestAllocator *alloc,
                                 QVirtQueue *vq)
{
    g_autofree Batch *probe = g_new0(Batch, 1);
    gint64 start = g_get_monotonic_time();
    uint32_t head, len;
    uint8_t status;

    do {
        g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
        g_usleep(100 * 1000);
        g_assert_true(batch_add(dev, alloc, vq, disk, probe, VIRTIO_BLK_T_IN,
                                0, SECTOR_SIZE, 0));
        batch_kick(vq, probe);
        g_assert_true(vbr_wait_used(global_qtest, vq, &head, &len));
        g_assert_cmpuint(head, ==, probe->reqs[0].head);
        status = qtest_readb(global_qtest, probe->reqs[0].status_addr);
        g_assert_true(status == VIRTIO_BLK_S_OK ||
                      status == VIRTIO_BLK_S_IOERR);
        batch_free(alloc, vq, probe);
    } while (status != VIRTIO_BLK_S_OK);
}

static bool nbd_vm_running(void)
{
    QDict *rsp = qmp("{ 'execute': 'query-status' }");
    bool running = qdict_get_bool(qdict_get_qdict(rsp, "return"), "running");

    qobject_unref(rsp);
    return running;
}

/*
 * `cont` until the @n held requests of @vq complete, as an operator
 * would: a retry before the client is connected again fails and stops
 * the VM again.
 */
static void nbd_cont_until_used(QVirtQueue *vq, uint16_t n)
{
    gint64 start = g_get_monotonic_time();

    for (;;) {
        qtest_qmp_assert_success(global_qtest, "{ 'execute': 'cont' }");
        do {
            g_assert_cmpint(g_get_monotonic_time() - start, <=, TIMEOUT_US);
            g_usleep(50 * 1000);
            if ((uint16_t)(qtest_readw(global_qtest, vq->used + 2) -
                           vq->last_used_idx) == n) {
                return;
            }
        } while (nbd_vm_running());
    }
}

/* Queue reads or writes (@type) of the region the test writes to */
static void nbd_queue(QVirtioDevice *dev, QGuestAllocator *alloc,
                      QVirtQueue *vq, Batch *b, uint32_t type)
{
    int i;

    for (i = 0; i < NBD_REQS; i++) {
        g_assert_true(batch_add(dev, alloc, vq, disk, b, type,
                                NBD_SECTOR + i * NBD_REQ_SECTORS,
                                NBD_REQ_SECTORS * SECTOR_SIZE, 0));
    }
}

static void test_nbd_server_restart(void *obj, void *data,
                                    QGuestAllocator *alloc)
{
    const NbdCase *nc = data;
    QVirtioPCIDevice *pdev = obj;
    QVirtioDevice *dev = &pdev->vdev;
    const size_t span = NBD_REQS * NBD_REQ_SECTORS * SECTOR_SIZE;
    g_autofree Batch *b = g_new0(Batch, 1);
    g_autofree uint8_t *before = NULL;
    QVirtQueue *vq;
    int i;

    model_start_device(dev, alloc, disk, &vq, 1, false);

    /* The path works: data there and back (the whole disk at the end) */
    nbd_queue(dev, alloc, vq, b, VIRTIO_BLK_T_OUT);
    batch_run(alloc, vq, b);
    nbd_queue(dev, alloc, vq, b, VIRTIO_BLK_T_IN);
    batch_run(alloc, vq, b);
    before = g_memdup2(disk->data + NBD_SECTOR * SECTOR_SIZE, span);

    /* Down, then new data on its way */
    nbd_server_kill();
    nbd_queue(dev, alloc, vq, b, VIRTIO_BLK_T_OUT);
    batch_kick(vq, b);

    if (nc->reconnect_delay) {
        /* The writes wait for the server, which is back well in time */
        g_usleep(200 * 1000);
        model_check_quiet(vq);
        nbd_server_start();
    } else if (!strcmp(nc->policy, "stop")) {
        /* They fail, the VM stops holding them; back, `cont` redoes them */
        qtest_qmp_eventwait(global_qtest, "STOP");
        model_check_quiet(vq);
        nbd_server_start();
        nbd_cont_until_used(vq, b->nreqs);
    } else {
        /* They fail to the guest; the image keeps what it had */
        for (i = 0; i < b->nreqs; i++) {
            b->reqs[i].want_status = VIRTIO_BLK_S_IOERR;
        }
        memcpy(disk->data + NBD_SECTOR * SECTOR_SIZE, before, span);
    }
    batch_wait(vq, b);
    model_check_quiet(vq);
    batch_free(alloc, vq, b);

    if (!nbd_server_pid) {
        nbd_server_start();
        nbd_wait_reconnected(dev, alloc, vq);
    }
    model_read_back(dev, alloc, disk, vq);
    model_check_image(disk);
    qvirtqueue_cleanup(dev->bus, vq, alloc);
}

static void register_nbd_tests(void)
{
    static const NbdCase cases[] = {
        { "report", 10 }, { "report", 0 }, { "stop", 0 },
    };
    QOSGraphTestOptions opts = { .before = nbd_setup };
    int i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autofree char *name = g_strdup_printf(
            "nbd/server-restart/%s-reconnect-delay-%d", cases[i].policy,
            cases[i].reconnect_delay);

        opts.arg = (void *)&cases[i];
        qos_add_test(name, "virtio-blk-pci", test_nbd_server_restart, &opts);
    }
}

libqos_init(register_nbd_tests);
