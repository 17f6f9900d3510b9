// Parsing fault specs and damaging files on purpose.
#include "train/faults.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace tandem::train {

namespace {

struct KindName {
    const char* name;
    FaultKind kind;
};
constexpr KindName kKinds[] = {{"nan", FaultKind::Nan},
                               {"spike", FaultKind::Spike},
                               {"kill", FaultKind::Kill},
                               {"hang", FaultKind::Hang},
                               {"ckpt-fail", FaultKind::CheckpointFail},
                               {"ckpt-corrupt", FaultKind::CheckpointCorrupt},
                               {"ckpt-truncate", FaultKind::CheckpointTruncate}};

double parse_positive(const std::string& text, const std::string& spec) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(v > 0))
        throw Error("fault '", spec, "': '", text, "' is not a positive number");
    return v;
}

Fault parse_one(const std::string& spec) {
    const size_t at = spec.find('@');
    if (at == std::string::npos)
        throw Error("fault '", spec, "': expected KIND@STEP[:ARG], e.g. nan@10 or kill@25:checkpoint");
    const std::string kind_name = spec.substr(0, at);
    Fault f{};
    bool known = false;
    for (const auto& k : kKinds)
        if (kind_name == k.name) f.kind = k.kind, known = true;
    if (!known)
        throw Error("fault '", spec, "': unknown kind '", kind_name,
                    "' (nan, spike, kill, hang, ckpt-fail, ckpt-corrupt, ckpt-truncate)");
    const size_t colon = spec.find(':', at);
    const std::string step = spec.substr(at + 1, colon == std::string::npos ? std::string::npos : colon - at - 1);
    char* end = nullptr;
    f.step = std::strtoll(step.c_str(), &end, 10);
    if (step.empty() || *end != '\0' || f.step < 1) throw Error("fault '", spec, "': step '", step, "' is not a step number >= 1");
    const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
    f.spec = spec;
    switch (f.kind) {
        case FaultKind::Nan: f.target = arg.empty() ? "grads" : arg; break;
        case FaultKind::Spike: f.value = arg.empty() ? 1000.0 : parse_positive(arg, spec); break;
        case FaultKind::Hang: f.value = arg.empty() ? 3600.0 : parse_positive(arg, spec); break;
        case FaultKind::Kill:
            f.target = arg.empty() ? "step" : arg;
            if (f.target != "step" && f.target != "eval" && f.target != "checkpoint")
                throw Error("fault '", spec, "': kill phase '", f.target, "' is not step, eval or checkpoint");
            break;
        default:
            if (!arg.empty()) throw Error("fault '", spec, "': ", kind_name, " takes no argument");
    }
    return f;
}

}  // namespace

FaultPlan::FaultPlan(const std::vector<std::string>& specs) {
    for (const std::string& spec : specs) faults_.push_back(parse_one(spec));
    fired_.assign(faults_.size(), false);
}

std::vector<std::string> FaultPlan::specs_from_environment() {
    std::vector<std::string> specs;
    const char* env = std::getenv("TANDEM_FAULTS");
    if (!env) return specs;
    std::string text = env;
    for (size_t start = 0; start <= text.size();) {
        size_t comma = text.find(',', start);
        if (comma == std::string::npos) comma = text.size();
        if (comma > start) specs.push_back(text.substr(start, comma - start));
        start = comma + 1;
    }
    return specs;
}

const Fault* FaultPlan::take(FaultKind kind, int64_t step, const std::string& target) {
    return take(kind, step, [&](const Fault& f) { return target.empty() || f.target == target; });
}

const Fault* FaultPlan::take(FaultKind kind, int64_t step, const std::function<bool(const Fault&)>& matches) {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < faults_.size(); ++i) {
        const Fault& f = faults_[i];
        if (fired_[i] || f.kind != kind || f.step != step || !matches(f)) continue;
        fired_[i] = true;
        return &f;
    }
    return nullptr;
}

void corrupt_file(const std::string& path) {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    if (!file) throw Error(path, ": cannot open to corrupt it");
    const auto size = static_cast<std::streamoff>(std::filesystem::file_size(path));
    if (size == 0) throw Error(path, ": is empty, nothing to corrupt");
    char byte = 0;
    file.seekg(size / 2);
    file.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x5a);
    file.seekp(size / 2);
    file.write(&byte, 1);
    if (!file) throw Error(path, ": cannot write the corrupted byte");
}

void truncate_file_to_half(const std::string& path) {
    std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
}

}  // namespace tandem::train
