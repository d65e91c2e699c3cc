"""shared/physics"""
