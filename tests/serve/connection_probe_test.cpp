// ConnectionProbe over real loopback connections: it finds the server's end of a connection (not
// the client's, which has the same two addresses the other way round) and the connection of an
// httplib request from the addresses httplib gives (IPv4 and IPv6), sees the client's close, its
// reset and a close behind unread bytes, and never reports a connection it did not find.
#include "serve/connection_probe.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

namespace tandem::serve {
namespace {

// A listening socket on a free loopback port and one connection to it, both ends open.
struct Connection {
    int listener = -1, client = -1, server = -1;

    Connection() {
        listener = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t size = sizeof addr;
        EXPECT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), size), 0);
        EXPECT_EQ(::listen(listener, 4), 0);
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &size);
        client = ::socket(AF_INET, SOCK_STREAM, 0);
        EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&addr), size), 0);
        server = ::accept(listener, nullptr, nullptr);
        EXPECT_GE(server, 0);
    }
    ~Connection() {
        for (int fd : {listener, client, server})
            if (fd >= 0) ::close(fd);
    }
    void close_client() {
        ::close(client);
        client = -1;
    }
    // The server end's addresses, as httplib puts them in a Request.
    ConnectionAddress server_address() const {
        sockaddr_in local{}, peer{};
        socklen_t size = sizeof local;
        ::getsockname(server, reinterpret_cast<sockaddr*>(&local), &size);
        size = sizeof peer;
        ::getpeername(server, reinterpret_cast<sockaddr*>(&peer), &size);
        char host[INET_ADDRSTRLEN];
        ConnectionAddress a;
        a.local_host = ::inet_ntop(AF_INET, &local.sin_addr, host, sizeof host);
        a.local_port = ntohs(local.sin_port);
        a.remote_host = ::inet_ntop(AF_INET, &peer.sin_addr, host, sizeof host);
        a.remote_port = ntohs(peer.sin_port);
        return a;
    }
};

// The close of a peer reaches the other end of a loopback connection at once; poll for a while
// all the same.
bool becomes_closed(const ConnectionProbe& probe) {
    for (int i = 0; i < 100; ++i) {
        if (probe.is_closed()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

TEST(ConnectionProbe, FindsTheServersEndAndSeesTheClientClose) {
    Connection c, other;
    const ConnectionProbe probe(c.server_address());
    ASSERT_TRUE(probe.has_socket());
    EXPECT_EQ(probe.socket(), c.server);  // not c.client, whose ends are the same two reversed
    // The socket found last is tried first: another connection's is not taken for it, and the
    // same connection's is found again.
    EXPECT_EQ(ConnectionProbe(other.server_address()).socket(), other.server);
    EXPECT_EQ(ConnectionProbe(c.server_address()).socket(), c.server);
    EXPECT_FALSE(probe.is_closed());
    c.close_client();
    EXPECT_TRUE(becomes_closed(probe));
    EXPECT_FALSE(ConnectionProbe(other.server_address()).is_closed());
}

TEST(ConnectionProbe, SeesAResetAndACloseBehindUnreadBytes) {
    {
        Connection c;
        const ConnectionProbe probe(c.server_address());
        const linger reset{.l_onoff = 1, .l_linger = 0};  // close() sends RST, not FIN
        ::setsockopt(c.client, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        c.close_client();
        EXPECT_TRUE(becomes_closed(probe));
    }
    {
        Connection c;
        const ConnectionProbe probe(c.server_address());
        // A pipelined request waits unread: the socket is readable, yet the client is there.
        ASSERT_EQ(::send(c.client, "GET / HTTP/1.1\r\n\r\n", 18, 0), 18);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        EXPECT_FALSE(probe.is_closed());
        c.close_client();
        EXPECT_TRUE(becomes_closed(probe));
    }
}

// The addresses a handler reads from its Request lead to its own connection, over IPv4 and, where
// the machine has it, IPv6 (whose address text httplib and the probe must render alike).
TEST(ConnectionProbe, FindsTheConnectionOfAnHttplibRequest) {
    for (const char* host : {"127.0.0.1", "::1"}) {
        httplib::Server server;
        std::atomic<int> found{-2};
        std::atomic<bool> closed{true};
        server.Get("/", [&](const httplib::Request& req, httplib::Response& res) {
            const ConnectionProbe probe(ConnectionAddress{.local_host = req.local_addr,
                                                          .local_port = req.local_port,
                                                          .remote_host = req.remote_addr,
                                                          .remote_port = req.remote_port});
            found = probe.socket();
            closed = probe.is_closed();
            res.set_content("ok", "text/plain");
        });
        const int port = server.bind_to_any_port(host);
        if (port <= 0) {
            ASSERT_STRNE(host, "127.0.0.1");
            std::printf("no %s on this machine: its case is skipped\n", host);
            continue;
        }
        std::thread listener([&] { server.listen_after_bind(); });
        httplib::Client client(host, port);
        const httplib::Result r = client.Get("/");
        server.stop();
        listener.join();
        ASSERT_TRUE(r) << host;
        EXPECT_EQ(r->status, 200) << host;
        EXPECT_GE(found, 0) << host;
        EXPECT_FALSE(closed) << host;
    }
}

TEST(ConnectionProbe, AConnectionNotFoundIsNeverReportedClosed) {
    Connection c;
    ConnectionAddress a = c.server_address();
    a.remote_port = a.remote_port == 65535 ? 65534 : a.remote_port + 1;
    const ConnectionProbe other_port(a);
    EXPECT_FALSE(other_port.has_socket());
    EXPECT_FALSE(other_port.is_closed());
    const ConnectionProbe unknown(ConnectionAddress{});  // what a request without addresses gives
    EXPECT_FALSE(unknown.has_socket());
    EXPECT_FALSE(unknown.is_closed());
}

}  // namespace
}  // namespace tandem::serve
