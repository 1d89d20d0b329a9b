// Command empty does nothing: make bench times its start, what any Go program pays.
package main

func main() {}
