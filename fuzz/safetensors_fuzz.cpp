// libFuzzer target for the safetensors reader: any bytes give a reader whose every tensor lies
// inside the file, or a tandem::Error; never a crash, a sanitizer report or an allocation out of
// proportion to the input. The reader maps a path, so each input goes through a file in /tmp.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = "/tmp/tandem_safetensors_fuzz_" + std::to_string(::getpid());
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), size);
    try {
        const tandem::io::SafetensorsReader reader(path);
        unsigned sum = 0;  // touch every accepted byte, so a wrong range shows under ASan
        for (const auto& t : reader.tensors())
            for (size_t i = 0; i < t.bytes; i += 61) sum += static_cast<const uint8_t*>(t.data)[i];
        (void)sum;
    } catch (const tandem::Error&) {
    }
    return 0;
}
