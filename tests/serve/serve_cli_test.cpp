// `tandem serve` as a process: the one start-up line that names the port, /health, the key from
// TANDEM_API_KEY, a SIGTERM that lets a running stream finish before exit 0, and a busy port
// refused by name.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "common/temp_dir.h"
#include "common/test_util.h"
#include "server_util.h"

namespace tandem::serve {
namespace {

using nlohmann::json;

// A running `tandem serve`, its stderr read line by line.
class ServeProcess {
   public:
    ServeProcess(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
        int fds[2];
        EXPECT_EQ(::pipe(fds), 0);
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(fds[1], 2);
            ::close(fds[0]);
            for (const std::string& e : env) ::putenv(const_cast<char*>(e.c_str()));
            std::vector<std::string> all = {testing::tandem_binary(), "serve"};
            all.insert(all.end(), args.begin(), args.end());
            std::vector<char*> argv;
            for (std::string& a : all) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        err_ = fds[0];
    }
    ~ServeProcess() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(err_);
    }

    // The next stderr line, "" at the end of the stream.
    std::string next_line() {
        for (;;) {
            const size_t nl = buffer_.find('\n');
            if (nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                all_ += line + "\n";
                return line;
            }
            char buf[4096];
            const ssize_t n = ::read(err_, buf, sizeof buf);
            if (n <= 0) return std::exchange(buffer_, "");
            buffer_.append(buf, size_t(n));
        }
    }
    // Lines until one matches `pattern` (its first group returned), or "" at the end.
    std::string wait_for(const std::regex& pattern) {
        for (std::string line; !(line = next_line()).empty();) {
            std::smatch m;
            if (std::regex_search(line, m, pattern)) return m.size() > 1 ? m[1].str() : line;
        }
        return "";
    }
    int wait_exit() {
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    void signal(int sig) { ::kill(pid_, sig); }
    const std::string& seen() const { return all_; }

   private:
    pid_t pid_ = -1;
    int err_ = -1;
    std::string buffer_, all_;
};

const std::regex kListening(R"(^tandem serve: listening on http://127\.0\.0\.1:(\d+)$)");

TEST(ServeCli, SigtermLetsTheRunningStreamFinishAndExitsZero) {
    testing::TempDir dir;
    testing::write_tiny_chat_model(dir.path());
    ServeProcess p({"--model", dir.path(), "--port", "0", "--served-model-name", "t"},
                   {"TANDEM_API_KEY=sekrit"});
    const int port = std::atoi(p.wait_for(kListening).c_str());
    ASSERT_GT(port, 0) << p.seen();
    ASSERT_NE(p.wait_for(std::regex("^tandem serve: ready: t ")), "") << p.seen();

    httplib::Client c("127.0.0.1", port);
    auto health = c.Get("/health");  // no key needed
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    auto refused = c.Get("/v1/models");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 401);
    c.set_bearer_token_auth("sekrit");

    // A stream of 150 tokens; SIGTERM arrives once its first event has.
    const json body = {{"prompt", "Hi"},
                       {"max_tokens", 150},
                       {"temperature", 0},
                       {"stream", true},
                       {"logit_bias", {{"256", -100}, {"257", -100}, {"258", -100}}}};
    std::string received;
    bool signalled = false;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    req.set_header("Authorization", "Bearer sekrit");
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        received.append(data, n);
        if (!signalled) {
            signalled = true;
            p.signal(SIGTERM);
        }
        return true;
    };
    httplib::Response res;
    httplib::Error error;
    ASSERT_TRUE(c.send(req, res, error)) << httplib::to_string(error);
    EXPECT_TRUE(signalled);
    const auto events = testing::sse_data(received);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "[DONE]");
    std::string finish;
    for (const std::string& e : events) {
        if (e == "[DONE]") continue;
        const json ch = json::parse(e)["choices"][0];
        if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
    }
    EXPECT_EQ(finish, "length");
    EXPECT_EQ(p.wait_exit(), 0) << p.seen();
    while (!p.next_line().empty()) {
    }
    // The request's line comes after the signal's: it ran on through the drain.
    const size_t stopping = p.seen().find("tandem serve: stopping:");
    const size_t logged = p.seen().find("tandem serve: POST /v1/completions 200 prompt_tokens=");
    ASSERT_NE(stopping, std::string::npos) << p.seen();
    ASSERT_NE(logged, std::string::npos) << p.seen();
    EXPECT_LT(stopping, logged) << p.seen();
    EXPECT_NE(p.seen().find("tandem serve: stopped"), std::string::npos) << p.seen();
    // The listener is closed: a new connection is refused.
    httplib::Client after("127.0.0.1", port);
    EXPECT_FALSE(after.Get("/health"));
}

TEST(ServeCli, BusyPortIsRefusedByName) {
    testing::TempDir dir;
    testing::write_tiny_chat_model(dir.path());
    ServeProcess first({"--model", dir.path(), "--port", "0"});
    const std::string port = first.wait_for(kListening);
    ASSERT_NE(port, "") << first.seen();
    ServeProcess second({"--model", dir.path(), "--port", port});
    EXPECT_EQ(second.wait_exit(), 1);
    while (!second.next_line().empty()) {
    }
    EXPECT_NE(second.seen().find("cannot listen on 127.0.0.1:" + port), std::string::npos)
        << second.seen();
    EXPECT_NE(second.seen().find("--port"), std::string::npos) << second.seen();
}

}  // namespace
}  // namespace tandem::serve
