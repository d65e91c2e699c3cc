"""shared/data"""
