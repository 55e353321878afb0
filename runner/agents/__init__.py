"""runner.agents"""
