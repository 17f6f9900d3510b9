// The world of the MPI tests: one communicator shared by every test of the binary, which each
// rank of `mpirun -np 2` runs in the same order, and the inputs each rank contributes.
#pragma once

#include <vector>

#include "core/rng.h"
#include "dist/mpi_communicator.h"

namespace tandem::dist::test {

// A short deadline: a test that desynchronises the ranks fails in seconds, not in 30.
MpiCommunicator& world();

// Rank r's input to a collective: n normals drawn under (seed, r), so that every rank can
// compute every other rank's input and with it the expected result.
inline std::vector<float> rank_input(int rank, int64_t n, uint64_t seed = 1) {
    std::vector<float> x(n);
    fill_normal(x.data(), n, RngKey{seed, RngPurpose::Init, static_cast<uint16_t>(rank), 0});
    return x;
}

}  // namespace tandem::dist::test
