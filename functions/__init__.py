"""Thin trigger adapters: parse, call one service, render. One blueprint per area."""
