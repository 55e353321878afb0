"""runner.core"""
