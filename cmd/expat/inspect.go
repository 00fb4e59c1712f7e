package main

import "io"

func inspect(args []string, stdin io.Reader, stdout, stderr io.Writer) int { return exitError }
