// SPDX-License-Identifier: BSD-3-Clause
// main.cpp - CppUTest runner for the unit tests (no corosync, no processes).
#include <CppUTest/CommandLineTestRunner.h>

int main(int argc, char **argv) { return CommandLineTestRunner::RunAllTests(argc, argv); }
