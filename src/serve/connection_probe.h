// Whether the client of a request being answered is still connected, for answers that write
// nothing while they wait (a whole, non-streamed completion; a stream still queued), where no
// failed write can tell.
// cpp-httplib 0.11 hands a handler no socket, so the probe finds it among the process's
// descriptors by the connection's two addresses; the server decides what a closed client means.
#pragma once

#include <string>

namespace tandem::serve {

// The two ends of a TCP connection as the server saw them (numeric host, port).
struct ConnectionAddress {
    std::string local_host;
    int local_port = -1;
    std::string remote_host;
    int remote_port = -1;
};

class ConnectionProbe {
   public:
    // Looks for the socket whose own end is `address`'s local one and whose peer is its remote
    // one (a TCP connection is the only socket with both). Where none is found (no /proc, an
    // address the server could not read, a connection already reset, which has no peer address
    // left), the probe never reports the client gone. The search costs a few system calls per
    // open descriptor, so the socket this thread found last is tried first: a kept-alive
    // connection's next request comes to the same httplib thread.
    explicit ConnectionProbe(const ConnectionAddress& address);

    bool has_socket() const { return fd_ >= 0; }
    int socket() const { return fd_; }  // -1: not found
    // True once the peer has closed its side (FIN), reset the connection or it failed. A client
    // that only half-closes (shutdown(SHUT_WR)) while it waits counts as gone, as it does for
    // llama.cpp's server; pipelined requests waiting in the socket do not hide a close.
    bool is_closed() const;

   private:
    // The descriptor belongs to the connection for as long as its request is being answered:
    // httplib closes it only after the handler returned and the answer was written.
    int fd_ = -1;
};

}  // namespace tandem::serve
