// popen-free process runner: stdout and stderr go to files, which are read back.
#include "e2e_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/test_util.h"

namespace tandem::testing {

namespace fs = std::filesystem;

std::string shell_quote(const std::string& text) {
    std::string out = "'";
    for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string make_scratch_dir(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / ("tandem_e2e_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir.string();
}

RunResult run_tandem(const std::string& args) {
    static int counter = 0;
    const std::string base = (fs::temp_directory_path() / ("tandem_e2e_run_" + std::to_string(::getpid()) + "_" +
                                                           std::to_string(counter++))).string();
    const std::string command = shell_quote(tandem_binary()) + " " + args + " >" + base + ".out 2>" + base + ".err";
    const int status = std::system(command.c_str());
    RunResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_text(base + ".out");
    r.err = read_text(base + ".err");
    fs::remove(base + ".out");
    fs::remove(base + ".err");
    return r;
}

bool run_tandem_killed_after(const std::string& args, double seconds, int* exit_code) {
    const std::string command = "exec " + shell_quote(tandem_binary()) + " " + args + " >/dev/null 2>&1";
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            if (exit_code) *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) return true;
    if (exit_code) *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;  // ended just in time
    return false;
}

const std::vector<std::string>& tiny_model_corpus() {
    static const std::vector<std::string> files = {
        "/usr/share/games/fortunes/science", "/usr/share/games/fortunes/computers",
        "/usr/share/games/fortunes/literature", "/usr/share/games/fortunes/wisdom"};
    return files;
}

// A tiny Llama: trains 100 steps in seconds on 2 cores.
const char* kTinyConfig = R"({"model": {"preset": "tiny", "n_layers": 2, "d_model": 64, "n_heads": 4,
  "n_heads_kv": 2, "head_dim": 16, "d_ffn": 192, "max_seq_len": 64}, "batch_size": 8, "seq_len": 64,
  "steps": 100, "lr": 5e-3, "lr_min": 5e-4, "warmup_steps": 10, "eval_every": 50, "eval_batches": 4,
  "checkpoint_every": 50, "log_every": 10, "seed": 7})";

std::string train_tiny_model(const std::string& dir) {
    std::string inputs;
    for (const std::string& file : tiny_model_corpus()) {
        if (!fs::exists(file)) return file + " is missing: run scripts/setup (Debian package fortunes)";
        inputs += " " + file;
    }
    RunResult tok = run_tandem("tokenizer train --input" + inputs +
                               " --vocab-size 512 --special '<|endoftext|>' --out " + dir + "/tokenizer.json");
    if (tok.exit_code != 0) return "tokenizer train: " + tok.err;
    RunResult prep = run_tandem("prepare --tokenizer " + dir + "/tokenizer.json --input" + inputs +
                                " --doc-separator % --val-fraction 0.05 --out " + dir + "/data");
    if (prep.exit_code != 0) return "prepare: " + prep.err;
    std::ofstream(dir + "/config.json") << kTinyConfig;
    RunResult train = run_tandem("train --config " + dir + "/config.json --data " + dir + "/data --out " + dir + "/run");
    if (train.exit_code != 0) return "train: " + train.err;
    return "";
}

}  // namespace tandem::testing
