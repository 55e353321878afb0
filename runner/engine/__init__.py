"""runner.engine"""
