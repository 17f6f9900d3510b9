// The MPI tests' main: MPI is initialised before the tests and finalised after them here, so
// that the tests that break a communicator on purpose still end the job cleanly.
#include <gtest/gtest.h>
#include <mpi.h>

#include <memory>

#include "dist/mpi/mpi_world.h"

namespace tandem::dist::test {
namespace {
std::unique_ptr<MpiCommunicator> g_world;  // freed before MPI_Finalize
}
MpiCommunicator& world() {
    if (!g_world) g_world = std::make_unique<MpiCommunicator>(MpiOptions{10.0});
    return *g_world;
}
}  // namespace tandem::dist::test

int main(int argc, char** argv) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    ::testing::InitGoogleTest(&argc, argv);
    int failed = RUN_ALL_TESTS();
    tandem::dist::test::g_world.reset();
    // Every rank waits for the others' verdicts: a rank that failed alone still fails the job.
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return failed;
}
