// kwm-checkpoint-probe FILE...: walks each HDF5 file's metadata in a process of its own, for
// Hdf5File::open (metadata_probe.hpp says why). Not meant to be run by hand.
#include "distributed/checkpoint/metadata_probe.hpp"

int main(int argc, char** argv) { return kwm::checkpoint::run_metadata_probe(argc, argv); }
