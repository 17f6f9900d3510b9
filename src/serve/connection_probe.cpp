// The search goes through /proc/self/fd and compares each socket's two ends with the request's,
// rendered as httplib renders them (getnameinfo, numeric host), so that an IPv6 or IPv4-mapped
// address compares as the same text. The check is poll() with POLLRDHUP, which sees the peer's
// close even behind unread bytes, where recv(MSG_PEEK) would only see the bytes.
#include "serve/connection_probe.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <charconv>
#include <filesystem>

namespace tandem::serve {

namespace {

// The numeric host and port of a socket address; false when it is not an internet address.
bool numeric_address(const sockaddr_storage& address, socklen_t size, std::string& host,
                     int& port) {
    char host_buf[NI_MAXHOST], port_buf[NI_MAXSERV];
    if (::getnameinfo(reinterpret_cast<const sockaddr*>(&address), size, host_buf,
                      sizeof host_buf, port_buf, sizeof port_buf,
                      NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return false;
    host = host_buf;
    port = std::atoi(port_buf);
    return true;
}

bool is_connection(int fd, const ConnectionAddress& want) {
    sockaddr_storage local{}, peer{};
    socklen_t local_size = sizeof local, peer_size = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0) return false;
    if (local.ss_family != AF_INET && local.ss_family != AF_INET6) return false;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0) return false;
    std::string local_host, remote_host;
    int local_port = -1, remote_port = -1;
    return numeric_address(local, local_size, local_host, local_port) &&
           numeric_address(peer, peer_size, remote_host, remote_port) &&
           local_port == want.local_port && remote_port == want.remote_port &&
           local_host == want.local_host && remote_host == want.remote_host;
}

}  // namespace

ConnectionProbe::ConnectionProbe(const ConnectionAddress& address) {
    if (address.local_port <= 0 || address.remote_port <= 0) return;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
        const std::string name = entry.path().filename().string();
        int fd = -1;
        if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc()) continue;
        if (is_connection(fd, address)) {
            fd_ = fd;
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
