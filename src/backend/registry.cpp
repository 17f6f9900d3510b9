// The list of backends and the choice of "auto". The cuda backend is libtandem_cuda.so, loaded
// here with dlopen the first time it is asked for, so that a process that never asks (tandem
// --help, the tokenizer, cpu training) does not spend ~0.4 s mapping the CUDA libraries.
#include "backend/registry.h"

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <mutex>

#include "backend/cpu/cpu_backend.h"
#include "backend/reference/reference_backend.h"

namespace tandem::backend {

namespace {

#ifdef TANDEM_CUDA_LIBRARY
// libtandem_cuda.so beside the program (an installed layout), else where the build wrote it.
std::string cuda_library_path() {
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const std::filesystem::path beside = self.parent_path() / "libtandem_cuda.so";
        if (std::filesystem::exists(beside, ec)) return beside.string();
    }
    return TANDEM_CUDA_LIBRARY;
}

// The library's one entry point (cuda_backend.cpp): the backend, or nullptr and the reason.
std::unique_ptr<Backend> load_cuda_backend(std::string& why_unavailable) {
    const std::string path = cuda_library_path();
    // Never closed: the backend's code and its CUDA libraries live as long as the process.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        why_unavailable = Error::concat("cannot load the CUDA backend ", path, ": ", ::dlerror(),
                                        " (are the CUDA runtime libraries installed?)");
        return nullptr;
    }
    using Make = Backend* (*)(std::string*);
    auto make = reinterpret_cast<Make>(::dlsym(handle, "tandem_make_cuda_backend"));
    if (!make) {
        why_unavailable = Error::concat(path, ": no tandem_make_cuda_backend (", ::dlerror(), ")");
        return nullptr;
    }
    return std::unique_ptr<Backend>(make(&why_unavailable));
}
#endif

struct Slot {
    std::once_flag once;
    std::unique_ptr<Backend> backend;
    std::string why_unavailable;
};

Slot& slot(std::string_view name) {
    static Slot reference, cpu, cuda;
    if (name == "reference") {
        std::call_once(reference.once, [] { reference.backend = make_reference_backend(); });
        return reference;
    }
    if (name == "cpu") {
        std::call_once(cpu.once, [] { cpu.backend = make_cpu_backend(); });
        return cpu;
    }
    TANDEM_ASSERT(name == "cuda", name);
    std::call_once(cuda.once, [] {
#ifdef TANDEM_CUDA_LIBRARY
        cuda.backend = load_cuda_backend(cuda.why_unavailable);
#else
        cuda.why_unavailable = "this tandem was built without CUDA (no nvcc at build time)";
#endif
    });
    return cuda;
}

}  // namespace

Backend& get_backend(std::string_view name) {
    if (name == "auto") return is_backend_available("cuda") ? get_backend("cuda") : get_backend("cpu");
    if (name != "reference" && name != "cpu" && name != "cuda")
        throw Error("unknown device '", name, "' (expected cpu, cuda, reference or auto)");
    Slot& s = slot(name);
    if (!s.backend) throw Error("device ", name, " is not available: ", s.why_unavailable);
    return *s.backend;
}

bool is_backend_available(std::string_view name) { return slot(name).backend != nullptr; }

std::vector<std::string> available_backends() {
    std::vector<std::string> names;
    for (const char* name : {"reference", "cpu", "cuda"})
        if (is_backend_available(name)) names.emplace_back(name);
    return names;
}

}  // namespace tandem::backend
