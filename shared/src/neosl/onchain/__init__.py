"""onchain"""
