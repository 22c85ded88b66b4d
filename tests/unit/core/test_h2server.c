/*
 * test_h2server.c - the gRPC listener (collector/core/h2server.c) in the listener registry: a
 * reload's server on the same address takes the running one over (no second bind, the open
 * connection stays), a failed reload leaves it as it was. HTTP/2, TLS and gRPC run against
 * real clients in tests/integration/test_otlp_grpc*.py.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "h2server.h"
#include "listener.h"

static const h2_limits_t lim = {.max_concurrent_streams = 10,
                                .max_header_list = 16384,
                                .window = 65535,
                                .idle_timeout_s = 60,
                                .max_connections = 16};

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 1 when fd is still open: nothing to read (or bytes), not end of stream, within 200 ms. */
static int still_open(int fd)
{
    char buf[256];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, 200) == 1) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0) {
            return n < 0 && errno == EAGAIN;
        }
    }
    return 1;
}

static h2_server_t *start(const char *ep)
{
    h2_handler_t h = {0};
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    h2_server_t *s = h2_server_start(ep, 1, &lim, &h, NULL, &eb);
    if (!s) {
        fprintf(stderr, "    %s\n", eb.msg);
    }
    return s;
}

UNIT_TEST(h2server_reload_takes_the_listener_and_its_connections_over)
{
    int port = unit_free_port();
    REQUIRE(port > 0);
    char ep[64];
    snprintf(ep, sizeof(ep), "127.0.0.1:%d", port);
    size_t before = listener_count();
    h2_server_t *old = start(ep);
    REQUIRE(old);
    CHECK(listener_count() == before + 1);
    int fd = connect_to(port);
    REQUIRE(fd >= 0);
    CHECK(still_open(fd));
    listener_stage_begin();
    h2_server_t *nw = start(ep); /* would be "address in use" without the registry */
    REQUIRE(nw);
    CHECK(h2_server_port(nw) == port);
    CHECK(listener_count() == before + 1);
    listener_stage_commit();
    h2_server_stop(old, 0);
    listener_stage_end();
    CHECK(still_open(fd)); /* the connection opened before the reload carries on */
    int fd2 = connect_to(port);
    CHECK(fd2 >= 0);
    h2_server_stop(nw, 0);
    CHECK(listener_count() == before);
    CHECK(connect_to(port) < 0);
    close(fd);
    if (fd2 >= 0) {
        close(fd2);
    }
}

UNIT_TEST(h2server_failed_reload_leaves_the_running_listener)
{
    int port = unit_free_port();
    REQUIRE(port > 0);
    char ep[64];
    snprintf(ep, sizeof(ep), "127.0.0.1:%d", port);
    size_t before = listener_count();
    h2_server_t *old = start(ep);
    REQUIRE(old);
    listener_stage_begin();
    h2_server_t *nw = start(ep);
    REQUIRE(nw);
    h2_server_stop(nw, 0); /* the new configuration did not start */
    listener_stage_end();
    CHECK(listener_count() == before + 1);
    int fd = connect_to(port);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(still_open(fd));
        close(fd);
    }
    /* outside a reload the address is taken: a second server is refused */
    h2_handler_t h = {0};
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    CHECK(h2_server_start(ep, 1, &lim, &h, NULL, &eb) == NULL);
    CHECK(strstr(eb.msg, "address in use") != NULL);
    h2_server_stop(old, 0);
    CHECK(listener_count() == before);
}
