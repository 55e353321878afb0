"""runner.results"""
