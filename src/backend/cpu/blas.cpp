// Loads OpenBLAS at run time and chooses its kernels on purpose.
// Why dlopen and not a link: Debian's OpenBLAS is built with DYNAMIC_ARCH and picks its kernels
// in its library constructor from OPENBLAS_CORETYPE, before main() could say otherwise. An
// environment that sets OPENBLAS_CORETYPE=Haswell on an AVX-512 machine (as ours does) silently
// runs every product on the AVX2 kernels at about 55% of the AVX-512 rate. Loading the library
// ourselves lets tandem decide: TANDEM_BLAS_CORETYPE if set, else OpenBLAS's own detection of
// this CPU, and the choice is logged once. Everything else about BLAS stays OpenBLAS's.
#include "backend/cpu/blas.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>

#include "backend/cpu/gemm.h"
#include "core/error.h"
#include "core/log.h"

#ifndef TANDEM_OPENBLAS_PATH  // set by cmake/Dependencies.cmake to the library it found
#define TANDEM_OPENBLAS_PATH "libopenblas.so.0"
#endif

namespace tandem::backend::cpu {

namespace {

constexpr const char* kSoname = "libopenblas.so.0";

// Sets (or, with nullopt, clears) an environment variable until the end of the scope, then
// restores it, so that child processes still see the user's environment. setenv is not
// thread-safe against a concurrent getenv: this runs once, from blas()'s static initialiser,
// when the cpu backend is created and before its kernels start any OpenMP threads.
class ScopedEnv {
   public:
    ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value) {
            ::setenv(name, value->c_str(), 1);
        } else {
            ::unsetenv(name);
        }
    }
    ~ScopedEnv() {
        if (old_) {
            ::setenv(name_, old_->c_str(), 1);
        } else {
            ::unsetenv(name_);
        }
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

   private:
    const char* name_;
    std::optional<std::string> old_;
};

std::string nonempty_env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

template <typename Fn>
Fn symbol(void* handle, const std::string& path, const char* name) {
    void* p = ::dlsym(handle, name);
    if (!p)
        throw Error(path, " has no symbol ", name,
                    " (is it OpenBLAS? tandem needs libopenblas0-openmp or libopenblas0)");
    return reinterpret_cast<Fn>(p);
}

Blas load() {
    Blas b;
    const std::string requested = nonempty_env("TANDEM_BLAS_CORETYPE");
    const std::string inherited = nonempty_env("OPENBLAS_CORETYPE");
    void* handle = nullptr;
    {
        // Already in the process (LD_PRELOAD, another library)? Then its kernels were chosen
        // before us and we can only report them.
        handle = ::dlopen(TANDEM_OPENBLAS_PATH, RTLD_NOW | RTLD_NOLOAD);
        if (!handle) handle = ::dlopen(kSoname, RTLD_NOW | RTLD_NOLOAD);
        if (handle) {
            b.chosen_by = "already loaded in the process before the cpu backend";
        } else {
            const bool detect = requested.empty() || requested == "auto";
            const ScopedEnv env("OPENBLAS_CORETYPE",
                                detect ? std::nullopt : std::optional<std::string>(requested));
            b.path = TANDEM_OPENBLAS_PATH;
            handle = ::dlopen(b.path.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (!handle) {
                b.path = kSoname;
                handle = ::dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
            }
            if (!handle)
                throw Error("cannot load OpenBLAS (tried ", TANDEM_OPENBLAS_PATH, " and ", kSoname,
                            "): ", ::dlerror(),
                            " (install libopenblas0-openmp: sudo apt-get install "
                            "libopenblas0-openmp)");
            if (!detect) {
                b.chosen_by = "TANDEM_BLAS_CORETYPE=" + requested;
            } else if (!inherited.empty()) {
                b.chosen_by = "detected for this CPU; OPENBLAS_CORETYPE=" + inherited +
                              " from the environment not used (set TANDEM_BLAS_CORETYPE to force "
                              "a core)";
            } else {
                b.chosen_by = "detected for this CPU";
            }
        }
    }
    if (b.path.empty()) b.path = TANDEM_OPENBLAS_PATH;
    b.sgemm = symbol<Blas::Sgemm>(handle, b.path, "cblas_sgemm");
    b.core = symbol<char* (*)()>(handle, b.path, "openblas_get_corename")();
    b.config = symbol<char* (*)()>(handle, b.path, "openblas_get_config")();
    // The handle stays open for the life of the process: the function pointers point into it.
    return b;
}

}  // namespace

const Blas& blas() {
    static const Blas loaded = load();  // thread-safe once; a throw leaves it for the next call
    return loaded;
}

void log_blas_choice_once() {
    // Logged at the first product rather than at load: a command that fails on its input
    // before computing anything prints its one error line and nothing else. A detail (shown by
    // train, demo and -v): in generate the first product comes after the prompt is echoed.
    static std::once_flag once;
    std::call_once(once, [] {
        const Blas& b = blas();
        const GemmKernel kernel = gemm_kernel_chosen();
        const std::string large =
            kernel == GemmKernel::openblas
                ? "OpenBLAS"
                : std::string("tandem's ") + gemm_kernel_name(kernel) +
                      " kernel (TANDEM_CPU_GEMM=openblas to change)";
        log_detail("cpu backend: large products on ", large,
                 ", the rest on OpenBLAS sgemm kernels for ", b.core, " (", b.chosen_by, ")");
    });
}

}  // namespace tandem::backend::cpu
