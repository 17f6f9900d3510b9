// safetensors files (the Hugging Face weight format): reading by memory map with every header
// field validated, and atomic writing. tandem's weights, optimizer state and test fixtures all
// use it, with Hugging Face tensor names.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"

namespace tandem::io {

struct SafetensorsTensor {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    const void* data = nullptr;  // into the mapped file (reader) or caller memory (writer)
    size_t bytes = 0;

    int64_t numel() const;
};

class SafetensorsReader {
public:
    // Maps the file and validates the header: its length, the JSON, every dtype, shape and
    // offset (inside the data area, sized shape x dtype, no overlaps). Throws Error naming the
    // file and the tensor otherwise.
    explicit SafetensorsReader(const std::string& path);

    const std::string& path() const { return file_.path(); }
    const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const SafetensorsTensor* find(std::string_view name) const;
    // Like find, but throws Error naming the file and the tensor when it is absent.
    const SafetensorsTensor& get(std::string_view name) const;
    // get() that also checks dtype and shape, with an error that names both sides.
    const SafetensorsTensor& get(std::string_view name, DType dtype,
                                 const std::vector<int64_t>& shape) const;

private:
    MappedFile file_;
    std::vector<SafetensorsTensor> tensors_;  // in file order
    std::map<std::string, std::string> metadata_;
};

// Writes tensors (data in host memory) in the given order, with an 8-byte aligned header, under
// a temporary name renamed into place when complete. Returns the file's xxHash3.
uint64_t save_safetensors(const std::string& path, std::span<const SafetensorsTensor> tensors,
                          const std::map<std::string, std::string>& metadata = {},
                          WriteMode mode = WriteMode::Buffered);

// "F32", "BF16", ... as written in safetensors headers.
std::string_view safetensors_dtype_name(DType dtype);

}  // namespace tandem::io
