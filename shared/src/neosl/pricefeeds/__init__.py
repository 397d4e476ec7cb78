"""pricefeeds"""
