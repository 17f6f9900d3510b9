// The serve tests' tiny model, in-process server and raw HTTP client.
#include "server_util.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/hf_dir_util.h"
#include "common/test_util.h"
#include "io/atomic_file.h"
#include "io/tokenizer_config.h"
#include "io/tokenizer_files.h"
#include "model/config.h"

namespace tandem::testing {

void write_tiny_chat_model(const std::string& dir, int64_t n_positions) {
    model::ModelConfig config = model::preset_config("qwen3-tiny");
    config.max_seq_len = n_positions;
    write_hf_dir(dir, config, DType::F32);
    io::BpeModel m = byte_tokenizer();  // bytes 0..255, <|endoftext|> 256
    m.added.push_back({"<|im_start|>", 257, true});
    m.added.push_back({"<|im_end|>", 258, true});
    m.tokens.resize(259);
    m.eos_id = 258;
    m.chat_template = io::read_file(test_data_path("io/chat_templates/qwen25_no_tools.jinja"));
    io::save_hf_tokenizer_json(m, dir + "/tokenizer.json");
    io::save_tokenizer_config_json(m, dir + "/tokenizer_config.json");
}

void LogLines::add(const std::string& line) {
    std::lock_guard lock(mutex_);
    lines_.push_back(line);
}

std::vector<std::string> LogLines::lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
}

TestServer::~TestServer() {
    if (server) server->shutdown(std::chrono::milliseconds(0));
}

std::unique_ptr<TestServer> start_test_server(const std::string& dir, serve::ServerOptions options,
                                              serve::ServedModelOptions model_options, bool load) {
    auto t = std::make_unique<TestServer>();
    t->log = std::make_shared<LogLines>();
    options.host = "127.0.0.1";
    options.port = 0;
    options.log = [log = t->log](const std::string& line) { log->add(line); };
    t->server = std::make_unique<serve::Server>(options);
    t->port = t->server->start();
    if (load) {
        model_options.path = dir;
        if (model_options.name.empty()) model_options.name = "tiny";
        t->model = serve::ServedModel::load(model_options);
        t->server->attach(*t->model);
    }
    return t;
}

namespace {

int connect_loopback(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(uint16_t(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

int send_request(int port, const std::string& request) {
    const int fd = connect_loopback(port);
    size_t sent = 0;
    while (fd >= 0 && sent < request.size()) {
        const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            ::close(fd);
            return -1;
        }
        sent += size_t(n);
    }
    return fd;
}

RawReply raw_http(int port, const std::string& request, double timeout_s, int delay_ms,
                  const std::string& stop_at, size_t n_fast) {
    using Clock = std::chrono::steady_clock;
    RawReply reply;
    const int fd = connect_loopback(port);
    if (fd < 0) return reply;
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration<double>(timeout_s);
    std::string received;
    auto read_some = [&](int wait_ms) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, wait_ms) <= 0) return 0;
        char buf[65536];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) received.append(buf, size_t(n));
        return n > 0 ? 1 : -1;
    };
    bool closed = false;
    const size_t fast = delay_ms <= 0 ? request.size() : std::min(n_fast, request.size());
    size_t sent = 0;
    while (sent < fast) {
        const ssize_t n = ::send(fd, request.data() + sent, fast - sent, MSG_NOSIGNAL);
        if (n <= 0) break;  // the server closed early (a refused body)
        sent += size_t(n);
    }
    if (sent == fast) {
        for (char c : std::string_view(request).substr(fast)) {
            if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1 || Clock::now() > deadline) break;
            // Keep reading meanwhile: the server may answer and close before the body ends.
            if (read_some(delay_ms) < 0) {
                closed = true;
                break;
            }
        }
    }
    while (!closed && Clock::now() < deadline) {
        if (!stop_at.empty() && received.find(stop_at) != std::string::npos) break;
        const int r = read_some(50);
        if (r < 0) closed = true;
    }
    reply.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    ::close(fd);
    const size_t head_end = received.find("\r\n\r\n");
    reply.head = received.substr(0, head_end);
    if (head_end != std::string::npos) reply.body = received.substr(head_end + 4);
    if (received.rfind("HTTP/1.1 ", 0) == 0) reply.status = std::atoi(received.c_str() + 9);
    return reply;
}

std::string post_request(const std::string& path, const std::string& body,
                         const std::string& extra_headers) {
    return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
           extra_headers + "Content-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
}

std::string post_streamed(int port, const std::string& path, const std::string& body,
                          const std::function<void(const std::string& before)>& on_chunk,
                          const std::string& api_key) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    std::string received;
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body;
    req.set_header("Content-Type", "application/json");
    if (!api_key.empty()) req.set_header("Authorization", "Bearer " + api_key);
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        on_chunk(received);
        received.append(data, n);
        return true;
    };
    httplib::Response res;
    httplib::Error error;
    EXPECT_TRUE(c.send(req, res, error)) << path << ": " << httplib::to_string(error);
    return received;
}

std::vector<std::string> sse_data(const std::string& body) {
    std::vector<std::string> out;
    size_t pos = 0;
    while ((pos = body.find("data: ", pos)) != std::string::npos) {
        const size_t end = body.find("\n\n", pos);
        out.push_back(
            body.substr(pos + 6, end == std::string::npos ? std::string::npos : end - pos - 6));
        if (end == std::string::npos) break;
        pos = end + 2;
    }
    return out;
}

}  // namespace tandem::testing
