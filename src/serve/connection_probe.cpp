// The search goes through /proc/self/fd and compares each socket's two ends with the request's,
// rendered as httplib renders them (getnameinfo, numeric host), so that an IPv6 or IPv4-mapped
// address compares as the same text. The check is poll() with POLLRDHUP, which sees the peer's
// close even behind unread bytes, where recv(MSG_PEEK) would only see the bytes.
#include "serve/connection_probe.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <charconv>
#include <filesystem>

namespace tandem::serve {

namespace {

// The numeric host of a socket address, as httplib renders it; false when it cannot be.
bool numeric_host(const sockaddr_storage& address, socklen_t size, std::string& host) {
    char buf[NI_MAXHOST];
    if (::getnameinfo(reinterpret_cast<const sockaddr*>(&address), size, buf, sizeof buf, nullptr,
                      0, NI_NUMERICHOST) != 0)
        return false;
    host = buf;
    return true;
}

int port_of(const sockaddr_storage& address) {
    if (address.ss_family == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
    if (address.ss_family == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
    return -1;
}

// Ports first: most descriptors are not sockets, or sockets of other connections to the same
// local port, and fail there before any address is rendered.
bool is_connection(int fd, const ConnectionAddress& want) {
    sockaddr_storage local{}, peer{};
    socklen_t local_size = sizeof local, peer_size = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0 ||
        port_of(local) != want.local_port)
        return false;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0 ||
        port_of(peer) != want.remote_port)
        return false;
    std::string local_host, remote_host;
    return numeric_host(local, local_size, local_host) && local_host == want.local_host &&
           numeric_host(peer, peer_size, remote_host) && remote_host == want.remote_host;
}

}  // namespace

ConnectionProbe::ConnectionProbe(const ConnectionAddress& address) {
    if (address.local_port <= 0 || address.remote_port <= 0) return;
    thread_local int last_found = -1;
    if (last_found >= 0 && is_connection(last_found, address)) {
        fd_ = last_found;
        return;
    }
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
         it.increment(ec)) {
        const std::string name = it->path().filename().string();
        int fd = -1;
        if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc()) continue;
        if (is_connection(fd, address)) {
            fd_ = last_found = fd;
            return;
        }
    }
}

bool ConnectionProbe::is_closed() const {
    if (fd_ < 0) return false;
    pollfd p{.fd = fd_, .events = POLLRDHUP, .revents = 0};
    if (::poll(&p, 1, 0) <= 0) return false;  // nothing happened (or EINTR: ask again later)
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace tandem::serve
