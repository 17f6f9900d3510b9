// The supervisor: fork and exec of /proc/self/exe with this process's own arguments (under
// mpirun with --ranks), then wait.
#include "cli/supervisor.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "io/atomic_file.h"

namespace tandem::cli {

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
volatile pid_t g_child = 0;

// Ctrl-C or a `kill` for the supervisor ends the run: passed on to the trainer, no restart.
void forward_signal(int sig) {
    g_stop_signal = sig;
    if (g_child > 0) ::kill(g_child, sig);
}

std::vector<std::string> own_arguments() {
    const std::string cmdline = io::read_file("/proc/self/cmdline");
    std::vector<std::string> args;
    for (size_t start = 0; start < cmdline.size();) {
        const size_t end = cmdline.find('\0', start);
        args.push_back(cmdline.substr(start, end - start));
        start = end == std::string::npos ? cmdline.size() : end + 1;
    }
    return args;
}

// The command that starts a whole job of `ranks` ranks, each running `args` (args[0] is replaced
// by this program's absolute path: mpirun looks the program up on every host).
std::vector<std::string> mpirun_command(const std::vector<std::string>& args, const SuperviseOptions& options) {
    const char* launcher = std::getenv("TANDEM_MPIRUN");
    std::vector<std::string> command = {launcher && *launcher ? launcher : "mpirun", "-np",
                                        std::to_string(options.ranks),
                                        // The attempt reaches ranks on other hosts too.
                                        "-x", kSupervisedAttemptVariable};
    command.insert(command.end(), options.mpirun_args.begin(), options.mpirun_args.end());
    std::error_code error;
    const std::string self = std::filesystem::read_symlink("/proc/self/exe", error).string();
    if (error) throw Error("supervisor: cannot read /proc/self/exe: ", error.message());
    command.push_back(self);
    command.insert(command.end(), args.begin() + 1, args.end());
    return command;
}

// Starts the trainer (mpirun, with ranks) and waits for it; returns the wait status.
int run_child(std::vector<std::string> args, int attempt, bool is_mpirun) {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw Error("supervisor: fork failed: ", std::strerror(errno));
    if (pid == 0) {
        ::setenv(kSupervisedAttemptVariable, std::to_string(attempt).c_str(), 1);
        if (is_mpirun) {
            if (::getuid() == 0) {  // Open MPI refuses root without both (as scripts/mpirun does)
                ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
                ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
            }
            ::execvp(argv[0], argv.data());
        } else {
            ::execv("/proc/self/exe", argv.data());
        }
        std::fprintf(stderr, "tandem: supervisor: cannot start the trainer: %s\n", std::strerror(errno));
        std::_Exit(127);
    }
    g_child = pid;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw Error("supervisor: waitpid failed: ", std::strerror(errno));
    g_child = 0;
    return status;
}

std::string describe(int status) {
    if (WIFSIGNALED(status)) {
        const char* name = ::sigabbrev_np(WTERMSIG(status));
        return "was killed by signal " + std::to_string(WTERMSIG(status)) + (name ? std::string(" (SIG") + name + ")" : "");
    }
    if (WEXITSTATUS(status) == kExitHung) return "was stopped by its watchdog (exit 3)";
    if (WEXITSTATUS(status) == kExitPeerLost) return "lost a peer rank in a collective (exit 4)";
    if (WEXITSTATUS(status) > 128)  // mpirun's code for a rank that a signal ended
        return "exited with code " + std::to_string(WEXITSTATUS(status)) + " (a rank was killed by signal " +
               std::to_string(WEXITSTATUS(status) - 128) + ")";
    return "exited with code " + std::to_string(WEXITSTATUS(status));
}

}  // namespace

int supervised_attempt() {
    const char* v = std::getenv(kSupervisedAttemptVariable);
    return v ? std::atoi(v) : -1;
}

int supervise_training(const SuperviseOptions& options) {
    const int max_restarts = options.max_restarts;
    struct sigaction action {};
    action.sa_handler = forward_signal;
    ::sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);

    const std::vector<std::string> args = own_arguments();
    for (int attempt = 0;; ++attempt) {
        std::vector<std::string> child_args = args;
        if (attempt > 0) {  // the last --resume wins
            child_args.push_back("--resume");
            child_args.push_back("auto");
        }
        if (options.ranks > 0) child_args = mpirun_command(child_args, options);
        const int status = run_child(child_args, attempt, options.ranks > 0);
        if (g_stop_signal) {
            log_info("supervisor: stopped by signal ", int(g_stop_signal), "; not restarting");
            return 128 + g_stop_signal;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            if (attempt > 0) log_info("supervisor: the trainer finished after ", attempt, " restart(s)");
            return 0;
        }
        if (WIFEXITED(status) && (WEXITSTATUS(status) == 1 || WEXITSTATUS(status) == 2)) {
            log_info("supervisor: the trainer ", describe(status), ": an error of its own, which a restart would meet "
                     "again; not restarting");
            return WEXITSTATUS(status);
        }
        if (attempt == max_restarts) {
            log_warn("supervisor: the trainer ", describe(status), " and all ", max_restarts,
                     " restart(s) are used up; giving up");
            return 1;
        }
        log_warn("supervisor: the trainer ", describe(status), "; restart ", attempt + 1, " of ", max_restarts,
                 " with --resume auto");
    }
}

}  // namespace tandem::cli
