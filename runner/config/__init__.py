"""runner.config"""
