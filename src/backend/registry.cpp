// The list of backends and the choice of "auto".
#include "backend/registry.h"

#include <memory>
#include <mutex>

#include "backend/cpu/cpu_backend.h"
#include "backend/reference/reference_backend.h"
#ifdef TANDEM_HAS_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace tandem::backend {

namespace {

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
#ifdef TANDEM_HAS_CUDA
        cuda.backend = make_cuda_backend(cuda.why_unavailable);
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
